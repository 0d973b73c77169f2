/*
 * Preloaded into the managed nginx (LD_PRELOAD, src/origin/nodelay.ts): sets
 * TCP_NODELAY on every connection nginx accepts.
 *
 * Why: nginx-rtmp writes each RTMP message to a player with its own send()
 * and never sets TCP_NODELAY (it has no directive for it, unlike nginx's own
 * http tcp_nodelay, on by default). With Nagle on, a message that follows one
 * the player has not yet acknowledged waits for that ACK, and a player's
 * kernel holds its ACK up to 40 ms whenever it has sent something itself
 * (ffprobe's RTMP acknowledgements every few seconds, for one). A capture of
 * ten receivers at N=200 showed 1 % of segments waiting 40-48 ms this way,
 * twice in a row at each player's acknowledgement: the benchmark's last
 * stalls (bench/README.md). A streaming origin wants every frame on the wire
 * when it is written.
 *
 * Only accept() and accept4() are wrapped; nginx's other sockets (listeners,
 * its own HTTP) are left as nginx made them.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

typedef int (*accept_fn)(int, struct sockaddr *, socklen_t *);
typedef int (*accept4_fn)(int, struct sockaddr *, socklen_t *, int);

static void no_delay(int fd) {
  if (fd < 0) return;
  int one = 1;
  /* Fails harmlessly on a Unix socket: nothing to do there. */
  (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

int accept4(int fd, struct sockaddr *addr, socklen_t *len, int flags) {
  static accept4_fn real = 0;
  if (real == 0) real = (accept4_fn)dlsym(RTLD_NEXT, "accept4");
  int conn = real(fd, addr, len, flags);
  no_delay(conn);
  return conn;
}

int accept(int fd, struct sockaddr *addr, socklen_t *len) {
  static accept_fn real = 0;
  if (real == 0) real = (accept_fn)dlsym(RTLD_NEXT, "accept");
  int conn = real(fd, addr, len);
  no_delay(conn);
  return conn;
}
