/* Exec floor of scripts/bench: floor_bare.py's answer from a C program linked
 * statically, so no interpreter and no dynamic linker: what executing any
 * program per connection costs under socket activation.  For scale only: the
 * rejection targets (no Python) are measured against it too. */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int main(void)
{
    static const char answer[] =
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 32\r\n"
        "Connection: close\r\n\r\n{\"success\": true, \"result\": 3.0}";
    char buf[16384];
    size_t have = 0;
    /* The head, then Content-Length bytes of body: read until the client
     * has sent it all (it waits for the answer, so a short read is fine). */
    while (have < sizeof(buf) - 1) {
        ssize_t n = read(0, buf + have, sizeof(buf) - 1 - have);
        if (n <= 0)
            break;
        have += (size_t)n;
        buf[have] = '\0';
        char *end = strstr(buf, "\r\n\r\n");
        if (!end)
            continue;
        char *cl = strstr(buf, "Content-Length:");
        size_t body = cl && cl < end ? (size_t)strtoul(cl + 15, NULL, 10) : 0;
        if (have >= (size_t)(end + 4 - buf) + body)
            break;
    }
    return write(1, answer, sizeof(answer) - 1) == (ssize_t)(sizeof(answer) - 1) ? 0 : 1;
}
