// A stand-in for CoreFoundation's umbrella header, declaring only what
// src/secure_enclave_darwin.cc uses, with the SDK's types and signatures (the
// same names, types, constness and parameter order as CFBase.h, CFString.h,
// CFData.h, CFDictionary.h, CFError.h, CFNumber.h; nullability left out), so
// that test/secure-enclave-syntax.test.ts can compile that file with Debian's
// clang for an Apple target (-fsyntax-only). Never linked, never used for a
// real build. See Security/Security.h for how the stubs are kept honest.
#pragma once
#include <cstdint>
extern "C" {
typedef const void* CFTypeRef;
typedef const struct __CFString* CFStringRef;
typedef const struct __CFData* CFDataRef;
typedef const struct __CFDictionary* CFDictionaryRef;
typedef struct __CFDictionary* CFMutableDictionaryRef;
typedef const struct __CFNumber* CFNumberRef;
typedef const struct __CFBoolean* CFBooleanRef;
typedef struct __CFError* CFErrorRef;
typedef const struct __CFAllocator* CFAllocatorRef;
typedef CFStringRef CFErrorDomain;
typedef long CFIndex;
typedef unsigned long CFTypeID;
typedef unsigned long CFOptionFlags;
typedef unsigned char UInt8;
typedef unsigned char Boolean;
typedef int32_t OSStatus;
typedef uint32_t CFStringEncoding;
typedef CFIndex CFNumberType;
enum { kCFStringEncodingUTF8 = 0x08000100 };
enum { kCFNumberIntType = 9 };
struct CFDictionaryKeyCallBacks { int x; };
struct CFDictionaryValueCallBacks { int x; };
extern const CFDictionaryKeyCallBacks kCFTypeDictionaryKeyCallBacks;
extern const CFDictionaryValueCallBacks kCFTypeDictionaryValueCallBacks;
extern const CFAllocatorRef kCFAllocatorDefault;
extern const CFBooleanRef kCFBooleanTrue;
extern const CFBooleanRef kCFBooleanFalse;
extern const CFErrorDomain kCFErrorDomainOSStatus;
CFIndex CFStringGetLength(CFStringRef);
CFIndex CFStringGetMaximumSizeForEncoding(CFIndex, CFStringEncoding);
Boolean CFStringGetCString(CFStringRef, char*, CFIndex, CFStringEncoding);
CFStringRef CFStringCreateWithCString(CFAllocatorRef, const char*, CFStringEncoding);
CFMutableDictionaryRef CFDictionaryCreateMutable(CFAllocatorRef, CFIndex, const CFDictionaryKeyCallBacks*, const CFDictionaryValueCallBacks*);
void CFDictionarySetValue(CFMutableDictionaryRef, const void*, const void*);
const void* CFDictionaryGetValue(CFDictionaryRef, const void*);
CFDataRef CFDataCreate(CFAllocatorRef, const UInt8*, CFIndex);
const UInt8* CFDataGetBytePtr(CFDataRef);
CFIndex CFDataGetLength(CFDataRef);
CFIndex CFErrorGetCode(CFErrorRef);
CFStringRef CFErrorCopyDescription(CFErrorRef);
CFErrorDomain CFErrorGetDomain(CFErrorRef);
CFTypeID CFGetTypeID(CFTypeRef);
CFTypeID CFDataGetTypeID(void);
void CFRelease(CFTypeRef);
CFNumberRef CFNumberCreate(CFAllocatorRef, CFNumberType, const void*);
}
