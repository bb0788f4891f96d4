/*
 * udp-blast: the bench's fast S load generator (built at bench time with the machine's cc;
 * load-generator.ts is the fallback). Keeps WINDOW requests in flight on one connected UDP
 * socket, batched with recvmmsg/sendmmsg, and counts replies per second.
 *
 *   udp-blast HOST PORT PDUFILE WINDOW WARMUP_S DURATION_S LOSS_MS
 *
 * PDUFILE holds N pre-encoded 100-byte S requests, request i asking for bench name i. Slot s
 * of the window only ever asks for names i with i % WINDOW == s, so a reply (which names its
 * file: the index's S reply carries it, the bare server echoes the request) finds its slot
 * from the name alone. A slot unanswered after LOSS_MS counts as lost and is sent again.
 * Prints "measure-start" and "measure-end" around the measured time, then one JSON line
 * shaped like load-generator.ts's throughput result.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define PDU 100
#define BATCH 64

static double now_ms(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec * 1e3 + t.tv_nsec / 1e6;
}

static uint32_t seed = 0x9e3779b9u;
static uint32_t xorshift(void) {
  seed ^= seed << 13;
  seed ^= seed >> 17;
  seed ^= seed << 5;
  return seed;
}

static char *pdus;
static long names, window;
static long *slot_name;
static double *slot_sent;
static struct mmsghdr out_msgs[BATCH];
static struct iovec out_iov[BATCH];
static int out_count;
static int fd;

static void flush_sends(void) {
  int done = 0;
  while (done < out_count) {
    int n = sendmmsg(fd, out_msgs + done, out_count - done, 0);
    if (n <= 0) break; /* buffer full or refused: those slots time out and are sent again */
    done += n;
  }
  out_count = 0;
}

/** Queues a request for a fresh random name of slot s. */
static void queue_slot(long s, double now) {
  long per = (names - s + window - 1) / window;
  long name = s + window * (long)(xorshift() % (uint32_t)per);
  slot_name[s] = name;
  slot_sent[s] = now;
  out_iov[out_count].iov_base = pdus + name * PDU;
  out_iov[out_count].iov_len = PDU;
  memset(&out_msgs[out_count].msg_hdr, 0, sizeof(struct msghdr));
  out_msgs[out_count].msg_hdr.msg_iov = &out_iov[out_count];
  out_msgs[out_count].msg_hdr.msg_iovlen = 1;
  if (++out_count == BATCH) flush_sends();
}

/** The bench name number a reply is about (after "bench-"), or -1. */
static long name_of(const char *buf, int len) {
  for (int i = 1; i + 6 < len; i++) {
    if (memcmp(buf + i, "bench-", 6) != 0) continue;
    long v = 0;
    for (int j = i + 6; j < len && buf[j] >= '0' && buf[j] <= '9'; j++) v = v * 10 + (buf[j] - '0');
    return v;
  }
  return -1;
}

int main(int argc, char **argv) {
  if (argc != 8) {
    fprintf(stderr, "usage: udp-blast HOST PORT PDUFILE WINDOW WARMUP_S DURATION_S LOSS_MS\n");
    return 2;
  }
  FILE *f = fopen(argv[3], "rb");
  if (!f) { perror(argv[3]); return 1; }
  fseek(f, 0, SEEK_END);
  long size = ftell(f);
  fseek(f, 0, SEEK_SET);
  pdus = malloc(size);
  if (fread(pdus, 1, size, f) != (size_t)size) { perror("read"); return 1; }
  fclose(f);
  names = size / PDU;
  window = atol(argv[4]);
  if (window > names) window = names;
  double warmup = atof(argv[5]) * 1e3, duration = atof(argv[6]) * 1e3, loss = atof(argv[7]);
  slot_name = calloc(window, sizeof(long));
  slot_sent = calloc(window, sizeof(double));

  fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0);
  int buf = 4 << 20;
  setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &buf, sizeof buf);
  setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &buf, sizeof buf);
  struct sockaddr_in to = { .sin_family = AF_INET, .sin_port = htons(atoi(argv[2])) };
  inet_pton(AF_INET, argv[1], &to.sin_addr);
  if (connect(fd, (struct sockaddr *)&to, sizeof to) != 0) { perror("connect"); return 1; }

  static char in_buf[BATCH][2048];
  static struct iovec in_iov[BATCH];
  static struct mmsghdr in_msgs[BATCH];
  for (int i = 0; i < BATCH; i++) {
    in_iov[i].iov_base = in_buf[i];
    in_iov[i].iov_len = sizeof in_buf[i];
    in_msgs[i].msg_hdr.msg_iov = &in_iov[i];
    in_msgs[i].msg_hdr.msg_iovlen = 1;
  }

  double start = now_ms(), t0 = 0, t1 = 0, last_sweep = start;
  long answered = 0, lost = 0, errors = 0, a0 = 0, a1 = 0, lost0 = 0, lost1 = 0;
  int phase = 0; /* 0 warm-up, 1 measuring, 2 done */
  for (long s = 0; s < window; s++) queue_slot(s, start);
  flush_sends();
  struct pollfd p = { .fd = fd, .events = POLLIN };
  while (phase < 2) {
    poll(&p, 1, 5);
    double now = now_ms();
    for (;;) {
      int n = recvmmsg(fd, in_msgs, BATCH, MSG_DONTWAIT, NULL);
      if (n <= 0) break;
      for (int i = 0; i < n; i++) {
        if (in_buf[i][0] == 'E') { errors++; continue; }
        long name = name_of(in_buf[i], (int)in_msgs[i].msg_len);
        if (name < 0) continue;
        long s = name % window;
        if (slot_name[s] != name) continue; /* late reply to a request counted lost */
        answered++;
        queue_slot(s, now);
      }
      flush_sends();
    }
    if (now - last_sweep >= 20) {
      last_sweep = now;
      for (long s = 0; s < window; s++) {
        if (now - slot_sent[s] < loss) continue;
        lost++;
        queue_slot(s, now);
      }
      flush_sends();
    }
    if (phase == 0 && now - start >= warmup) {
      phase = 1;
      t0 = now; a0 = answered; lost0 = lost;
      printf("measure-start\n");
      fflush(stdout);
    } else if (phase == 1 && now - t0 >= duration) {
      phase = 2;
      t1 = now; a1 = answered; lost1 = lost;
      printf("measure-end\n");
      fflush(stdout);
    }
  }
  double seconds = (t1 - t0) / 1e3;
  printf("{\"mode\":\"throughput\",\"generator\":\"c\",\"window\":%ld,\"sockets\":1,\"answered\":%ld,\"seconds\":%.3f,\"perSecond\":%.1f,\"lost\":%ld,\"errors\":%ld,\"p50Ms\":null,\"p99Ms\":null}\n",
         window, a1 - a0, seconds, (a1 - a0) / seconds, lost1 - lost0, errors);
  return 0;
}
