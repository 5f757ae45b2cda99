/* dmn_keepd.h: the keeper process: holds a duplicate of every lease descriptor of its daemon so that no lock dies with the daemon. */
#ifndef DMN_KEEPD_H
#define DMN_KEEPD_H

/*
 * The keeper is a tiny single-threaded process forked from the daemon (never exec'd, never
 * the daemon's child: it is double-forked into its own session).  It serves one daemon at a
 * time over a SOCK_SEQPACKET UNIX socket (mode 0600, same uid only), speaking
 * vml_handover.x's keeper protocol: it stores, per lease, the daemon's snapshot as opaque
 * bytes, the lease's descriptor and its holders' pidfds, and hands all of it back to the
 * next daemon (HELLO).  It never decodes a snapshot, never takes or drops a lock itself:
 * holding the duplicate is what keeps the open file description, and with it the OFD lock,
 * alive when the daemon dies.  While no daemon is connected it closes the items whose
 * holders all exited (it has a pidfd for each of them).  It exits on BYE (the daemon's
 * clean stop), or once no daemon is connected and it holds nothing.
 */

/*
 * Run the keeper on the listening socket listen_fd (bound to sock_path by the daemon,
 * already listening; taken over).  Every other descriptor must be closed by the caller
 * first.  log_outputs (may be NULL) is the daemon's log_outputs minus stderr.  Returns the
 * process exit status: 0 on BYE or when nothing is left to keep, 1 on a failure of the
 * loop itself.
 */
int dmn_keepd_run(int listen_fd, const char *sock_path, const char *log_outputs);

#endif
