// A stand-in for macOS's <libproc.h>, declaring only what
// src/peer_darwin.cc uses, with the SDK's signatures, so that
// test/peer-native-syntax.test.ts can compile that file on Linux
// (-fsyntax-only). It is never linked and never used for a real build.
#pragma once
#include <stdint.h>
#include <sys/proc_info.h>
extern "C" {
int proc_listpids(uint32_t type, uint32_t typeinfo, void* buffer, int buffersize);
int proc_pidinfo(int pid, int flavor, uint64_t arg, void* buffer, int buffersize);
int proc_pidfdinfo(int pid, int fd, int flavor, void* buffer, int buffersize);
}
