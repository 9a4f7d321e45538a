// A stand-in for macOS's <sys/proc_info.h>, declaring only what
// src/peer_darwin.cc uses (names, types and values as in the SDK; the fields
// of each structure that it reads, in the SDK's order, with the rest left
// out), so that test/peer-native-syntax.test.ts can compile that file on
// Linux (-fsyntax-only). Its layouts are NOT the SDK's: it is never linked and
// never used for a real build.
#pragma once
#include <netinet/in.h>
#include <stdint.h>
#include <sys/types.h>

#define PROC_ALL_PIDS 1

#define PROC_PIDLISTFDS 1
#define PROC_PIDLISTFD_SIZE (sizeof(struct proc_fdinfo))
#define PROC_PIDTBSDINFO 3
#define PROC_PIDTBSDINFO_SIZE (sizeof(struct proc_bsdinfo))

#define PROC_PIDFDSOCKETINFO 3
#define PROC_PIDFDSOCKETINFO_SIZE (sizeof(struct socket_fdinfo))

#define PROX_FDTYPE_SOCKET 2

#define INI_IPV4 0x1
#define INI_IPV6 0x2

#define TSI_S_CLOSED 0
#define TSI_S_LISTEN 1
#define TSI_S_SYN_SENT 2
#define TSI_S_SYN_RECEIVED 3
#define TSI_S_ESTABLISHED 4
#define TSI_S__CLOSE_WAIT 5
#define TSI_S_FIN_WAIT_1 6
#define TSI_S_CLOSING 7
#define TSI_S_LAST_ACK 8
#define TSI_S_FIN_WAIT_2 9
#define TSI_S_TIME_WAIT 10

enum { SOCKINFO_TCP = 2 };

struct proc_bsdinfo {
  uint32_t pbi_flags;
  uint32_t pbi_status;
  uint32_t pbi_xstatus;
  uint32_t pbi_pid;
  uint32_t pbi_ppid;
  uid_t pbi_uid;
};

struct proc_fdinfo {
  int32_t proc_fd;
  uint32_t proc_fdtype;
};

struct in4in6_addr {
  uint32_t i46a_pad32[3];
  struct in_addr i46a_addr4;
};

struct in_sockinfo {
  int insi_fport;
  int insi_lport;
  uint64_t insi_gencnt;
  uint32_t insi_flags;
  uint32_t insi_flow;
  uint8_t insi_vflag;
  uint8_t insi_ip_ttl;
  uint32_t rfu_1;
  union {
    struct in4in6_addr ina_46;
    struct in6_addr ina_6;
  } insi_faddr;
  union {
    struct in4in6_addr ina_46;
    struct in6_addr ina_6;
  } insi_laddr;
};

struct tcp_sockinfo {
  struct in_sockinfo tcpsi_ini;
  int tcpsi_state;
};

struct socket_info {
  int soi_kind;
  union {
    struct in_sockinfo pri_in;
    struct tcp_sockinfo pri_tcp;
  } soi_proto;
};

struct proc_fileinfo {
  uint32_t fi_openflags;
};

struct socket_fdinfo {
  struct proc_fileinfo pfi;
  struct socket_info psi;
};
