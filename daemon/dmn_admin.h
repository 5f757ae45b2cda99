/* dmn_admin.h: the WHO and BREAK admin procedures: naming a lease's holder from this daemon or from the lease file's owner record. */
#ifndef DMN_ADMIN_H
#define DMN_ADMIN_H

#include "vml_error.h"
#include "vml_extension.h"
#include "dmn_dispatch.h"

/*
 * WHO: the leases args names, as (lockspace, name), or, with name "", every lease the disk
 * args->disk may map to: the disk itself in the default lockspace and the SHA-256 of its
 * canonical and given spellings in every registered lockspace.  Each is reported from this
 * daemon's table when held here, else from the lease file (its owner record, and whether
 * anybody holds its lock).  ret (zeroed) is filled with malloc'd data for xdr_free.
 */
int dmn_admin_who(dmn_context *ctx, const vml_ext_who_args *args, vml_ext_who_ret *ret,
                  vml_error *err);

/*
 * BREAK: a lease held here is taken from its holders (their <on_lockfailure> is applied,
 * then the lease is dropped without writing anything); a lease held by nobody whose owner
 * record still names a holder (a host that crashed) has its record cleared, generation
 * kept.  A lock held elsewhere is never broken: busy, naming the holder.
 */
int dmn_admin_break(dmn_context *ctx, const vml_ext_break_args *args, vml_ext_break_ret *ret,
                    vml_error *err);

#endif
