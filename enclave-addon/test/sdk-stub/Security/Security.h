// A stand-in for Security.framework's umbrella header, declaring only what
// src/secure_enclave_darwin.cc uses, so that test/secure-enclave-syntax.test.ts
// can compile that file with Debian's clang for an Apple target
// (-fsyntax-only). It is never linked and never used for a real build.
//
// Each declaration mirrors the macOS SDK's: the same name, types, constness
// and parameter order as in Security/SecKey.h, SecItem.h, SecAccessControl.h
// and SecBase.h (nullability annotations and availability macros left out).
// A call the source makes with the wrong arguments fails here as it would on
// a Mac; a call not declared here fails as "undeclared", which is the signal
// to add its real signature (and to list it in docs/key-backends.md).
#pragma once
#include <CoreFoundation/CoreFoundation.h>
extern "C" {
// SecBase.h
typedef struct __SecKey* SecKeyRef;
typedef struct __SecAccessControl* SecAccessControlRef;
// SecKey.h
typedef CFStringRef SecKeyAlgorithm;
extern const SecKeyAlgorithm kSecKeyAlgorithmECDSASignatureDigestX962SHA256;
SecKeyRef SecKeyCreateRandomKey(CFDictionaryRef parameters, CFErrorRef* error);
SecKeyRef SecKeyCreateWithData(CFDataRef keyData, CFDictionaryRef attributes, CFErrorRef* error);
CFDictionaryRef SecKeyCopyAttributes(SecKeyRef key);
SecKeyRef SecKeyCopyPublicKey(SecKeyRef key);
CFDataRef SecKeyCopyExternalRepresentation(SecKeyRef key, CFErrorRef* error);
CFDataRef SecKeyCreateSignature(SecKeyRef key, SecKeyAlgorithm algorithm, CFDataRef dataToSign, CFErrorRef* error);
// SecAccessControl.h: CF_OPTIONS(CFOptionFlags, SecAccessControlCreateFlags), same bit values.
typedef CFOptionFlags SecAccessControlCreateFlags;
enum : CFOptionFlags { kSecAccessControlUserPresence = 1u << 0, kSecAccessControlPrivateKeyUsage = 1u << 30 };
SecAccessControlRef SecAccessControlCreateWithFlags(CFAllocatorRef allocator, CFTypeRef protection,
                                                    SecAccessControlCreateFlags flags, CFErrorRef* error);
// SecItem.h
extern const CFStringRef kSecAttrAccessibleWhenUnlockedThisDeviceOnly;
extern const CFStringRef kSecAttrAccessibleAfterFirstUnlockThisDeviceOnly;
extern const CFStringRef kSecAttrAccessControl;
extern const CFStringRef kSecAttrIsPermanent;
extern const CFStringRef kSecAttrKeyClass;
extern const CFStringRef kSecAttrKeyClassPrivate;
extern const CFStringRef kSecAttrKeySizeInBits;
extern const CFStringRef kSecAttrKeyType;
extern const CFStringRef kSecAttrKeyTypeECSECPrimeRandom;
extern const CFStringRef kSecAttrTokenID;
extern const CFStringRef kSecAttrTokenIDSecureEnclave;
extern const CFStringRef kSecPrivateKeyAttrs;
extern const CFStringRef kSecUseAuthenticationContext;
}
