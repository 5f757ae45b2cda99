/* vml_wire.h: message framing, error payloads and a blocking client for the vmlockd wire protocols. */
#ifndef VML_WIRE_H
#define VML_WIRE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <rpc/rpc.h>

#include "vml_rpc.h"
#include "vml_lockspace.h"
#include "vml_extension.h"
#include "vml_error.h"

/* Bytes of a message with an empty payload: length word + header. */
#define VML_WIRE_MIN_MESSAGE (VML_RPC_LENGTH_WORD + VML_RPC_HEADER_SIZE)
/* Largest value the length word may carry (it counts itself). */
#define VML_WIRE_MAX_MESSAGE (VML_RPC_MESSAGE_MAX + VML_RPC_LENGTH_WORD)

/*
 * Decode the length word at the start of a message.  Returns 0 and the total length when it
 * lies within [VML_WIRE_MIN_MESSAGE, max]; -1 otherwise (the peer must be dropped).
 */
int vml_wire_frame_length(const unsigned char word[VML_RPC_LENGTH_WORD], size_t max,
                          size_t *total);

/*
 * Encode a whole message (length word, header, payload) into a new malloc'd buffer owned by
 * the caller.  payload_proc NULL means an empty payload.
 */
int vml_wire_encode(const vml_rpc_header *hdr, xdrproc_t payload_proc, const void *payload,
                    unsigned char **out, size_t *out_len);

/* Encode an error reply to the call whose header is call_hdr, from err. */
int vml_wire_encode_error(const vml_rpc_header *call_hdr, const vml_error *err,
                          unsigned char **out, size_t *out_len);

/*
 * Decode the header of a whole message msg[0..len) (length word included).  The payload
 * starts at VML_WIRE_MIN_MESSAGE.
 */
int vml_wire_decode_header(const unsigned char *msg, size_t len, vml_rpc_header *hdr);

/*
 * Decode the payload of a whole message into out (zeroed by the caller; free it with
 * xdr_free(proc, out) whether or not this succeeds).  Fails unless the payload is consumed
 * exactly: trailing bytes are as malformed as missing ones.
 */
int vml_wire_decode_payload(const unsigned char *msg, size_t len, xdrproc_t proc, void *out);

/* Turn a decoded error payload into a vml_error (texts truncated to the record's size). */
void vml_wire_error_from_payload(const vml_rpc_error *payload, vml_error *err);

/*
 * A blocking client: plain socket(2)/connect(2)/write(2)/read(2), no threads, no locks, no
 * event loop, so it is usable in a child forked from a multi-threaded libvirtd.
 * The socket is close-on-exec; vml_client_dup_holder() makes the copy QEMU inherits.
 */
typedef struct vml_client {
    int fd;
    unsigned int serial;    /* next serial; libvirt starts at 0 on each connection */
} vml_client;

/*
 * Connect to a UNIX socket path ("@name" = abstract).  Errors name the path; when connect(2)
 * itself fails, errno is left as it set it (ENOENT, ECONNREFUSED: callers may start a daemon).
 */
int vml_client_connect(vml_client *client, const char *path, vml_error *err);

/*
 * One call: send the arguments, wait for the reply with the same serial, decode the return
 * value into ret (zeroed by the caller, freed by it with xdr_free(ret_proc, ret)); ret_proc
 * NULL means the reply must have an empty payload.  An error
 * reply fills err with the peer's code, domain and message and returns -1.  Transport
 * failures are VIR_ERR_RPC / VIR_ERR_SYSTEM_ERROR errors and also return -1.
 */
int vml_client_call(vml_client *client, unsigned int prog, unsigned int vers, int proc,
                    xdrproc_t args_proc, const void *args,
                    xdrproc_t ret_proc, void *ret, vml_error *err);

/* A non-close-on-exec duplicate of the connection (for QEMU to inherit), or -1 with err. */
int vml_client_dup_holder(vml_client *client, vml_error *err);

/* Close the connection; accepts a client that never connected (fd -1). */
void vml_client_close(vml_client *client);

/*
 * Replacement for xdr_string() in the generated decoders (wired in with -Dxdr_string=...):
 * identical on the wire, but refuses a decoded string with an embedded NUL, which would
 * otherwise name a different file than the one the peer sent.
 */
bool_t vml_xdr_string_checked(XDR *xdrs, char **sp, u_int maxsize);

/*
 * Replacements for xdr_array() and xdr_bytes() in the generated decoders (-Dxdr_array=...,
 * -Dxdr_bytes=...): identical on the wire, but a count that the rest of the message cannot
 * hold is refused before anything is allocated for it, so a few bytes claiming 4 million
 * elements cost nothing.  Decoding only on xdrmem streams (see stream_holds()).
 */
bool_t vml_xdr_array_checked(XDR *xdrs, char **addrp, u_int *sizep, u_int maxsize,
                             u_int elsize, xdrproc_t elproc);
bool_t vml_xdr_bytes_checked(XDR *xdrs, char **bytesp, u_int *sizep, u_int maxsize);

#endif
