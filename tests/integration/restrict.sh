#!/bin/bash
# restrict.sh: once RESTRICTed (as the holder connection QEMU inherits is), a connection can do nothing at all.
# shellcheck source=../lib/vml.sh
. "$(dirname "$0")/../lib/vml.sh"
vml_require VMLOCKD VMLOCKCTL
vml_setup

U1=33333333-3333-4333-8333-000000000001
U2=33333333-3333-4333-8333-000000000002
RAW=("$VML_PYTHON" "$VML_LIB_DIR/vml_rawclient.py" --socket)

vml_daemon_config vmlockd
vml_daemon_start || bail_out "vmlockd -d starts"
IMG=$VML_TMP/disk.img
vml_image "$IMG"

# Control: an unrestricted connection acting for a live owner (this shell) may lock and unlock.
vml_run "${RAW[@]}" "$VML_SOCK" register ctl 8 $$ "$U2" acquire "" "$IMG" 0 release "" "$IMG"
expect_rc 0 "raw client runs (control)"
if [ "$VML_OUT" = $'ok\nok\nok' ]; then
    tap_ok "an unrestricted connection registers, acquires and releases"
else
    tap_not_ok "an unrestricted connection registers, acquires and releases"
    vml_show_last
fi

# The holder connection as QEMU inherits it: registered for itself, then restricted.
vml_run "${RAW[@]}" "$VML_SOCK" register vmr 7 self "$U1" restrict \
    acquire "" "$IMG" 0 release "" "$IMG" register vmr 7 self "$U1" create-lockspace "$VML_TMP/ls"
expect_rc 0 "raw client runs (restricted)"
mapfile -t lines <<<"$VML_OUT"
registered_and_restricted() {
    [ "${lines[0]:-}" = ok ] && [ "${lines[1]:-}" = ok ]
}
tap_check "REGISTER and RESTRICT succeed" registered_and_restricted || vml_show_last
denied() {
    [[ "${lines[$1]:-}" == "error 29 7 "*"lock manager connection has been restricted"* ]]
}
tap_check "ACQUIRE_RESOURCE after RESTRICT: VIR_ERR_OPERATION_DENIED" denied 2 || vml_show_last
tap_check "RELEASE_RESOURCE after RESTRICT: VIR_ERR_OPERATION_DENIED" denied 3 || vml_show_last
tap_check "REGISTER again after RESTRICT: VIR_ERR_OPERATION_DENIED" denied 4 || vml_show_last
tap_check "CREATE_LOCKSPACE after RESTRICT: VIR_ERR_OPERATION_DENIED" denied 5 || vml_show_last
tap_check "the denied calls created no lockspace" test ! -e "$VML_TMP/ls"
expect_no_lease "the denied ACQUIRE took no lease" "name=$IMG "
tap_done
