/* Numeric address parsing: no resolver, so the static binary never needs NSS. */
#include <kcp/base.h>
#include <kcp/net.h>

#include <stdlib.h>
#include <string.h>
#include <uv.h>

int kcp_net_parse_addr(const char *hostport, struct sockaddr_storage *out)
{
    char host[64];
    const char *port_str;
    size_t hlen;
    if (!hostport)
        return KCP_EINVAL;
    if (hostport[0] == '[') {
        const char *end = strchr(hostport, ']');
        if (!end || end[1] != ':')
            return KCP_EINVAL;
        hlen = (size_t)(end - hostport - 1);
        if (hlen == 0 || hlen >= sizeof(host))
            return KCP_EINVAL;
        memcpy(host, hostport + 1, hlen);
        port_str = end + 2;
    } else {
        const char *colon = strrchr(hostport, ':');
        if (!colon || strchr(hostport, ':') != colon)
            return KCP_EINVAL; /* a bare IPv6 address needs brackets */
        hlen = (size_t)(colon - hostport);
        if (hlen == 0 || hlen >= sizeof(host))
            return KCP_EINVAL;
        memcpy(host, hostport, hlen);
        port_str = colon + 1;
    }
    host[hlen] = '\0';
    if (!*port_str || strlen(port_str) > 5 || strspn(port_str, "0123456789") != strlen(port_str))
        return KCP_EINVAL;
    int port = atoi(port_str);
    if (port > 65535)
        return KCP_EINVAL;
    memset(out, 0, sizeof(*out));
    if (hostport[0] == '[')
        return uv_ip6_addr(host, port, (struct sockaddr_in6 *)out) == 0 ? 0 : KCP_EINVAL;
    return uv_ip4_addr(host, port, (struct sockaddr_in *)out) == 0 ? 0 : KCP_EINVAL;
}
