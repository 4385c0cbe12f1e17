/* HTTP/1.x detection: does a TCP payload start with a request line (a method and a space)
 * or a status line ("HTTP/1.")? Only the first bytes are checked here; user space parses
 * the line and the Host header out of the copy that goes into the ring buffer. */
#ifndef TACMESH_HTTP_H
#define TACMESH_HTTP_H

static __always_inline int starts_with(const __u8 *b, const char *s, int n)
{
#pragma unroll
	for (int i = 0; i < 8; i++) {
		if (i >= n)
			break;
		if (b[i] != (__u8)s[i])
			return 0;
	}
	return 1;
}

/* b holds at least 8 bytes of payload. Returns HTTP_KIND_* or 0. */
static __always_inline int http_kind(const __u8 *b)
{
	switch (b[0]) {
	case 'G':
		return starts_with(b, "GET ", 4) ? HTTP_KIND_REQUEST : 0;
	case 'P':
		return starts_with(b, "POST ", 5) || starts_with(b, "PUT ", 4) || starts_with(b, "PATCH ", 6)
			       ? HTTP_KIND_REQUEST
			       : 0;
	case 'D':
		return starts_with(b, "DELETE ", 7) ? HTTP_KIND_REQUEST : 0;
	case 'O':
		return starts_with(b, "OPTIONS ", 8) ? HTTP_KIND_REQUEST : 0;
	case 'C':
		return starts_with(b, "CONNECT ", 8) ? HTTP_KIND_REQUEST : 0;
	case 'T':
		return starts_with(b, "TRACE ", 6) ? HTTP_KIND_REQUEST : 0;
	case 'H':
		if (starts_with(b, "HEAD ", 5))
			return HTTP_KIND_REQUEST;
		return starts_with(b, "HTTP/1.", 7) ? HTTP_KIND_RESPONSE : 0;
	}
	return 0;
}

#endif
