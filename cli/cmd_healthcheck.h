/*
 * cmd_healthcheck.h — `embedsrv healthcheck`: ask a running server whether it
 * is healthy, for Docker's HEALTHCHECK and other supervisors.
 *
 * The probe speaks just enough HTTP/1.0 over a plain socket to read a status
 * line, so the runtime image needs no curl or wget.  It has no state; any
 * thread may call it.  Nothing it returns needs freeing.
 */
#ifndef ES_CMD_HEALTHCHECK_H
#define ES_CMD_HEALTHCHECK_H

#include "error.h"

/* Default port when neither --port nor EMBEDSRV_PORT is given. */
#define ES_HEALTHCHECK_DEFAULT_PORT "8080"
/* Default deadline for connect + request + status line, milliseconds. */
#define ES_HEALTHCHECK_DEFAULT_TIMEOUT_MS 3000

/*
 * Connect to host:port (a name or a numeric IPv4/IPv6 address; every address
 * getaddrinfo returns is tried in turn), send `GET path HTTP/1.0` with an
 * `Authorization: Bearer <api_key>` header when api_key is non-NULL and
 * non-empty, and read the response's status line, all within timeout_ms.
 *
 * Returns 0 and sets *status (100..599) when the server answered with an
 * HTTP status line, whatever the status; ES_EIO when no connection could be
 * made, the deadline passed, or the server closed without answering;
 * ES_ECORRUPT when the answer is not HTTP; ES_EINVAL for a bad argument
 * (path not starting with '/', control characters, timeout <= 0).
 */
int es_healthcheck_probe(const char *host, const char *port, const char *path,
			 const char *api_key, int timeout_ms, int *status,
			 es_error *err);

/* The subcommand itself, cmd_healthcheck(), is declared in commands.h:
 * `embedsrv healthcheck [--host H] [--port P] [--path P] [--timeout SECONDS]
 * [--quiet]`.  Host defaults to 127.0.0.1 (or the address in EMBEDSRV_HOST
 * when that is not a wildcard), port to EMBEDSRV_PORT or 8080, path to
 * /healthz; the API key comes from EMBEDSRV_API_KEY.  Exit status: 0 when
 * the server answered 2xx, 1 otherwise, 2 usage error. */

#endif
