// A stand-in for Security.framework's header, declaring only what
// src/secure_enclave_darwin.cc uses, with the SDK's types and signatures, so
// that test/secure-enclave-syntax.test.ts can compile that file on Linux
// (-fsyntax-only). It is never linked and never used for a real build.
#pragma once
#include <CoreFoundation/CoreFoundation.h>
extern "C" {
typedef struct __SecKey* SecKeyRef;
typedef struct __SecAccessControl* SecAccessControlRef;
typedef CFStringRef SecKeyAlgorithm;
typedef CFOptionFlags SecAccessControlCreateFlags;
enum : CFOptionFlags { kSecAccessControlUserPresence = 1u << 0, kSecAccessControlPrivateKeyUsage = 1u << 30 };
enum { errSecSuccess = 0, errSecItemNotFound = -25300, errSecDuplicateItem = -25299 };
extern const CFStringRef kSecClass, kSecClassKey, kSecAttrKeyClass, kSecAttrKeyClassPrivate, kSecAttrApplicationTag,
    kSecAttrTokenID, kSecAttrTokenIDSecureEnclave, kSecUseDataProtectionKeychain, kSecReturnRef, kSecReturnAttributes,
    kSecMatchLimit, kSecMatchLimitAll, kSecValueRef, kSecAttrLabel, kSecAttrIsPermanent, kSecAttrAccessControl,
    kSecAttrKeyType, kSecAttrKeyTypeECSECPrimeRandom, kSecAttrKeySizeInBits, kSecPrivateKeyAttrs;
extern const CFTypeRef kSecAttrAccessibleWhenUnlockedThisDeviceOnly;
extern const SecKeyAlgorithm kSecKeyAlgorithmECDSASignatureDigestX962SHA256;
CFTypeID SecKeyGetTypeID(void);
OSStatus SecItemCopyMatching(CFDictionaryRef, CFTypeRef*);
OSStatus SecItemDelete(CFDictionaryRef);
SecKeyRef SecKeyCopyPublicKey(SecKeyRef);
CFDataRef SecKeyCopyExternalRepresentation(SecKeyRef, CFErrorRef*);
CFDataRef SecKeyCreateSignature(SecKeyRef, SecKeyAlgorithm, CFDataRef, CFErrorRef*);
SecKeyRef SecKeyCreateRandomKey(CFDictionaryRef, CFErrorRef*);
SecAccessControlRef SecAccessControlCreateWithFlags(CFAllocatorRef, CFTypeRef, SecAccessControlCreateFlags, CFErrorRef*);
}
