// The slice of the PKCS#11 v2.40 ABI this addon uses, written from the OASIS
// specification (PKCS #11 Cryptographic Token Interface Base Specification
// v2.40, section 3 "Data types" and the function list in section 5).
//
// Why our own header: the addon must build on macOS, Windows and minimal Linux
// images where no pkcs11.h is installed, and the few types we touch are
// stable. Everything lives in namespace credport::p11 and constants are
// constexpr (not macros), so a test can include this header next to another
// implementation's pkcs11.h and static_assert that the two agree (see
// enclave-addon/test/abi-check and test/pkcs11-abi.test.ts).
//
// The one structure whose layout must be complete is CK_FUNCTION_LIST: a
// module hands us a pointer to its table and we index into it, so every one of
// the 68 function pointers is listed in specification order even though most
// are never called (those are typed CK_UNUSED_FN; only the size of a function
// pointer matters for them).
#ifndef CREDPORT_PKCS11_ABI_H_
#define CREDPORT_PKCS11_ABI_H_

#include <cstddef>

// The specification packs Cryptoki structures to 1 byte on Windows and uses
// the platform's default alignment everywhere else.
#if defined(_WIN32)
#pragma pack(push, credport_cryptoki, 1)
#endif

namespace credport {
namespace p11 {

typedef unsigned char CK_BYTE;
typedef CK_BYTE CK_CHAR;
typedef CK_BYTE CK_UTF8CHAR;
typedef CK_BYTE CK_BBOOL;
typedef unsigned long CK_ULONG;  // "at least 32 bits": unsigned long on every ABI we target
typedef CK_ULONG CK_FLAGS;
typedef CK_ULONG CK_RV;
typedef CK_ULONG CK_SLOT_ID;
typedef CK_ULONG CK_SESSION_HANDLE;
typedef CK_ULONG CK_OBJECT_HANDLE;
typedef CK_ULONG CK_OBJECT_CLASS;
typedef CK_ULONG CK_KEY_TYPE;
typedef CK_ULONG CK_CERTIFICATE_TYPE;
typedef CK_ULONG CK_ATTRIBUTE_TYPE;
typedef CK_ULONG CK_MECHANISM_TYPE;
typedef CK_ULONG CK_USER_TYPE;
typedef CK_ULONG CK_NOTIFICATION;
typedef void* CK_VOID_PTR;

struct CK_VERSION {
  CK_BYTE major;
  CK_BYTE minor;
};

struct CK_INFO {
  CK_VERSION cryptokiVersion;
  CK_UTF8CHAR manufacturerID[32];
  CK_FLAGS flags;
  CK_UTF8CHAR libraryDescription[32];
  CK_VERSION libraryVersion;
};

struct CK_SLOT_INFO {
  CK_UTF8CHAR slotDescription[64];
  CK_UTF8CHAR manufacturerID[32];
  CK_FLAGS flags;
  CK_VERSION hardwareVersion;
  CK_VERSION firmwareVersion;
};

struct CK_TOKEN_INFO {
  CK_UTF8CHAR label[32];
  CK_UTF8CHAR manufacturerID[32];
  CK_UTF8CHAR model[16];
  CK_CHAR serialNumber[16];
  CK_FLAGS flags;
  CK_ULONG ulMaxSessionCount;
  CK_ULONG ulSessionCount;
  CK_ULONG ulMaxRwSessionCount;
  CK_ULONG ulRwSessionCount;
  CK_ULONG ulMaxPinLen;
  CK_ULONG ulMinPinLen;
  CK_ULONG ulTotalPublicMemory;
  CK_ULONG ulFreePublicMemory;
  CK_ULONG ulTotalPrivateMemory;
  CK_ULONG ulFreePrivateMemory;
  CK_VERSION hardwareVersion;
  CK_VERSION firmwareVersion;
  CK_CHAR utcTime[16];
};

struct CK_ATTRIBUTE {
  CK_ATTRIBUTE_TYPE type;
  CK_VOID_PTR pValue;
  CK_ULONG ulValueLen;
};

struct CK_MECHANISM {
  CK_MECHANISM_TYPE mechanism;
  CK_VOID_PTR pParameter;
  CK_ULONG ulParameterLen;
};

typedef CK_RV (*CK_CREATEMUTEX)(CK_VOID_PTR* ppMutex);
typedef CK_RV (*CK_DESTROYMUTEX)(CK_VOID_PTR pMutex);
typedef CK_RV (*CK_LOCKMUTEX)(CK_VOID_PTR pMutex);
typedef CK_RV (*CK_UNLOCKMUTEX)(CK_VOID_PTR pMutex);

struct CK_C_INITIALIZE_ARGS {
  CK_CREATEMUTEX CreateMutex;
  CK_DESTROYMUTEX DestroyMutex;
  CK_LOCKMUTEX LockMutex;
  CK_UNLOCKMUTEX UnlockMutex;
  CK_FLAGS flags;
  CK_VOID_PTR pReserved;
};

struct CK_FUNCTION_LIST;

// Signatures of the functions the addon calls.
typedef CK_RV (*CK_C_Initialize)(CK_VOID_PTR pInitArgs);
typedef CK_RV (*CK_C_Finalize)(CK_VOID_PTR pReserved);
typedef CK_RV (*CK_C_GetInfo)(CK_INFO* pInfo);
typedef CK_RV (*CK_C_GetFunctionList)(CK_FUNCTION_LIST** ppFunctionList);
typedef CK_RV (*CK_C_GetSlotList)(CK_BBOOL tokenPresent, CK_SLOT_ID* pSlotList, CK_ULONG* pulCount);
typedef CK_RV (*CK_C_GetSlotInfo)(CK_SLOT_ID slotID, CK_SLOT_INFO* pInfo);
typedef CK_RV (*CK_C_GetTokenInfo)(CK_SLOT_ID slotID, CK_TOKEN_INFO* pInfo);
typedef CK_RV (*CK_NOTIFY)(CK_SESSION_HANDLE hSession, CK_NOTIFICATION event, CK_VOID_PTR pApplication);
typedef CK_RV (*CK_C_OpenSession)(CK_SLOT_ID slotID, CK_FLAGS flags, CK_VOID_PTR pApplication, CK_NOTIFY Notify,
                                  CK_SESSION_HANDLE* phSession);
typedef CK_RV (*CK_C_CloseSession)(CK_SESSION_HANDLE hSession);
typedef CK_RV (*CK_C_Login)(CK_SESSION_HANDLE hSession, CK_USER_TYPE userType, CK_UTF8CHAR* pPin, CK_ULONG ulPinLen);
typedef CK_RV (*CK_C_Logout)(CK_SESSION_HANDLE hSession);
typedef CK_RV (*CK_C_CreateObject)(CK_SESSION_HANDLE hSession, CK_ATTRIBUTE* pTemplate, CK_ULONG ulCount,
                                   CK_OBJECT_HANDLE* phObject);
typedef CK_RV (*CK_C_DestroyObject)(CK_SESSION_HANDLE hSession, CK_OBJECT_HANDLE hObject);
typedef CK_RV (*CK_C_GetAttributeValue)(CK_SESSION_HANDLE hSession, CK_OBJECT_HANDLE hObject, CK_ATTRIBUTE* pTemplate,
                                        CK_ULONG ulCount);
typedef CK_RV (*CK_C_FindObjectsInit)(CK_SESSION_HANDLE hSession, CK_ATTRIBUTE* pTemplate, CK_ULONG ulCount);
typedef CK_RV (*CK_C_FindObjects)(CK_SESSION_HANDLE hSession, CK_OBJECT_HANDLE* phObject, CK_ULONG ulMaxObjectCount,
                                  CK_ULONG* pulObjectCount);
typedef CK_RV (*CK_C_FindObjectsFinal)(CK_SESSION_HANDLE hSession);
typedef CK_RV (*CK_C_SignInit)(CK_SESSION_HANDLE hSession, CK_MECHANISM* pMechanism, CK_OBJECT_HANDLE hKey);
typedef CK_RV (*CK_C_Sign)(CK_SESSION_HANDLE hSession, CK_BYTE* pData, CK_ULONG ulDataLen, CK_BYTE* pSignature,
                           CK_ULONG* pulSignatureLen);
typedef CK_RV (*CK_C_GenerateKeyPair)(CK_SESSION_HANDLE hSession, CK_MECHANISM* pMechanism,
                                      CK_ATTRIBUTE* pPublicKeyTemplate, CK_ULONG ulPublicKeyAttributeCount,
                                      CK_ATTRIBUTE* pPrivateKeyTemplate, CK_ULONG ulPrivateKeyAttributeCount,
                                      CK_OBJECT_HANDLE* phPublicKey, CK_OBJECT_HANDLE* phPrivateKey);

// Placeholder type for table entries the addon never calls.
typedef CK_RV (*CK_UNUSED_FN)();

// Version 2.40's CK_FUNCTION_LIST: the version, then 68 function pointers in
// exactly this order (specification section 5.2 / the order of pkcs11f.h).
struct CK_FUNCTION_LIST {
  CK_VERSION version;
  CK_C_Initialize C_Initialize;
  CK_C_Finalize C_Finalize;
  CK_C_GetInfo C_GetInfo;
  CK_C_GetFunctionList C_GetFunctionList;
  CK_C_GetSlotList C_GetSlotList;
  CK_C_GetSlotInfo C_GetSlotInfo;
  CK_C_GetTokenInfo C_GetTokenInfo;
  CK_UNUSED_FN C_GetMechanismList;
  CK_UNUSED_FN C_GetMechanismInfo;
  CK_UNUSED_FN C_InitToken;
  CK_UNUSED_FN C_InitPIN;
  CK_UNUSED_FN C_SetPIN;
  CK_C_OpenSession C_OpenSession;
  CK_C_CloseSession C_CloseSession;
  CK_UNUSED_FN C_CloseAllSessions;
  CK_UNUSED_FN C_GetSessionInfo;
  CK_UNUSED_FN C_GetOperationState;
  CK_UNUSED_FN C_SetOperationState;
  CK_C_Login C_Login;
  CK_C_Logout C_Logout;
  CK_C_CreateObject C_CreateObject;
  CK_UNUSED_FN C_CopyObject;
  CK_C_DestroyObject C_DestroyObject;
  CK_UNUSED_FN C_GetObjectSize;
  CK_C_GetAttributeValue C_GetAttributeValue;
  CK_UNUSED_FN C_SetAttributeValue;
  CK_C_FindObjectsInit C_FindObjectsInit;
  CK_C_FindObjects C_FindObjects;
  CK_C_FindObjectsFinal C_FindObjectsFinal;
  CK_UNUSED_FN C_EncryptInit;
  CK_UNUSED_FN C_Encrypt;
  CK_UNUSED_FN C_EncryptUpdate;
  CK_UNUSED_FN C_EncryptFinal;
  CK_UNUSED_FN C_DecryptInit;
  CK_UNUSED_FN C_Decrypt;
  CK_UNUSED_FN C_DecryptUpdate;
  CK_UNUSED_FN C_DecryptFinal;
  CK_UNUSED_FN C_DigestInit;
  CK_UNUSED_FN C_Digest;
  CK_UNUSED_FN C_DigestUpdate;
  CK_UNUSED_FN C_DigestKey;
  CK_UNUSED_FN C_DigestFinal;
  CK_C_SignInit C_SignInit;
  CK_C_Sign C_Sign;
  CK_UNUSED_FN C_SignUpdate;
  CK_UNUSED_FN C_SignFinal;
  CK_UNUSED_FN C_SignRecoverInit;
  CK_UNUSED_FN C_SignRecover;
  CK_UNUSED_FN C_VerifyInit;
  CK_UNUSED_FN C_Verify;
  CK_UNUSED_FN C_VerifyUpdate;
  CK_UNUSED_FN C_VerifyFinal;
  CK_UNUSED_FN C_VerifyRecoverInit;
  CK_UNUSED_FN C_VerifyRecover;
  CK_UNUSED_FN C_DigestEncryptUpdate;
  CK_UNUSED_FN C_DecryptDigestUpdate;
  CK_UNUSED_FN C_SignEncryptUpdate;
  CK_UNUSED_FN C_DecryptVerifyUpdate;
  CK_UNUSED_FN C_GenerateKey;
  CK_C_GenerateKeyPair C_GenerateKeyPair;
  CK_UNUSED_FN C_WrapKey;
  CK_UNUSED_FN C_UnwrapKey;
  CK_UNUSED_FN C_DeriveKey;
  CK_UNUSED_FN C_SeedRandom;
  CK_UNUSED_FN C_GenerateRandom;
  CK_UNUSED_FN C_GetFunctionStatus;
  CK_UNUSED_FN C_CancelFunction;
  CK_UNUSED_FN C_WaitForSlotEvent;
};

constexpr CK_BBOOL CK_FALSE = 0;
constexpr CK_BBOOL CK_TRUE = 1;
constexpr CK_ULONG CK_UNAVAILABLE_INFORMATION = ~0UL;

// Return values (section 3.6 / table in the specification's CK_RV list).
constexpr CK_RV CKR_OK = 0x00000000UL;
constexpr CK_RV CKR_CANCEL = 0x00000001UL;
constexpr CK_RV CKR_HOST_MEMORY = 0x00000002UL;
constexpr CK_RV CKR_SLOT_ID_INVALID = 0x00000003UL;
constexpr CK_RV CKR_GENERAL_ERROR = 0x00000005UL;
constexpr CK_RV CKR_FUNCTION_FAILED = 0x00000006UL;
constexpr CK_RV CKR_ARGUMENTS_BAD = 0x00000007UL;
constexpr CK_RV CKR_NEED_TO_CREATE_THREADS = 0x00000009UL;
constexpr CK_RV CKR_CANT_LOCK = 0x0000000AUL;
constexpr CK_RV CKR_ATTRIBUTE_SENSITIVE = 0x00000011UL;
constexpr CK_RV CKR_ATTRIBUTE_TYPE_INVALID = 0x00000012UL;
constexpr CK_RV CKR_ATTRIBUTE_VALUE_INVALID = 0x00000013UL;
constexpr CK_RV CKR_DATA_LEN_RANGE = 0x00000021UL;
constexpr CK_RV CKR_DEVICE_ERROR = 0x00000030UL;
constexpr CK_RV CKR_DEVICE_MEMORY = 0x00000031UL;
constexpr CK_RV CKR_DEVICE_REMOVED = 0x00000032UL;
constexpr CK_RV CKR_FUNCTION_CANCELED = 0x00000050UL;
constexpr CK_RV CKR_FUNCTION_NOT_SUPPORTED = 0x00000054UL;
constexpr CK_RV CKR_KEY_HANDLE_INVALID = 0x00000060UL;
constexpr CK_RV CKR_KEY_TYPE_INCONSISTENT = 0x00000063UL;
constexpr CK_RV CKR_KEY_FUNCTION_NOT_PERMITTED = 0x00000068UL;
constexpr CK_RV CKR_MECHANISM_INVALID = 0x00000070UL;
constexpr CK_RV CKR_OBJECT_HANDLE_INVALID = 0x00000082UL;
constexpr CK_RV CKR_OPERATION_ACTIVE = 0x00000090UL;
constexpr CK_RV CKR_OPERATION_NOT_INITIALIZED = 0x00000091UL;
constexpr CK_RV CKR_PIN_INCORRECT = 0x000000A0UL;
constexpr CK_RV CKR_PIN_INVALID = 0x000000A1UL;
constexpr CK_RV CKR_PIN_LEN_RANGE = 0x000000A2UL;
constexpr CK_RV CKR_PIN_EXPIRED = 0x000000A3UL;
constexpr CK_RV CKR_PIN_LOCKED = 0x000000A4UL;
constexpr CK_RV CKR_SESSION_CLOSED = 0x000000B0UL;
constexpr CK_RV CKR_SESSION_COUNT = 0x000000B1UL;
constexpr CK_RV CKR_SESSION_HANDLE_INVALID = 0x000000B3UL;
constexpr CK_RV CKR_SESSION_READ_ONLY = 0x000000B5UL;
constexpr CK_RV CKR_TEMPLATE_INCOMPLETE = 0x000000D0UL;
constexpr CK_RV CKR_TEMPLATE_INCONSISTENT = 0x000000D1UL;
constexpr CK_RV CKR_TOKEN_NOT_PRESENT = 0x000000E0UL;
constexpr CK_RV CKR_TOKEN_NOT_RECOGNIZED = 0x000000E1UL;
constexpr CK_RV CKR_TOKEN_WRITE_PROTECTED = 0x000000E2UL;
constexpr CK_RV CKR_USER_ALREADY_LOGGED_IN = 0x00000100UL;
constexpr CK_RV CKR_USER_NOT_LOGGED_IN = 0x00000101UL;
constexpr CK_RV CKR_USER_PIN_NOT_INITIALIZED = 0x00000102UL;
constexpr CK_RV CKR_USER_TYPE_INVALID = 0x00000103UL;
constexpr CK_RV CKR_DOMAIN_PARAMS_INVALID = 0x00000130UL;
constexpr CK_RV CKR_CURVE_NOT_SUPPORTED = 0x00000140UL;
constexpr CK_RV CKR_BUFFER_TOO_SMALL = 0x00000150UL;
constexpr CK_RV CKR_CRYPTOKI_NOT_INITIALIZED = 0x00000190UL;
constexpr CK_RV CKR_CRYPTOKI_ALREADY_INITIALIZED = 0x00000191UL;

// Flags: CK_SLOT_INFO, CK_TOKEN_INFO, C_OpenSession, CK_C_INITIALIZE_ARGS.
constexpr CK_FLAGS CKF_TOKEN_PRESENT = 0x00000001UL;
constexpr CK_FLAGS CKF_REMOVABLE_DEVICE = 0x00000002UL;
constexpr CK_FLAGS CKF_HW_SLOT = 0x00000004UL;
constexpr CK_FLAGS CKF_WRITE_PROTECTED = 0x00000002UL;
constexpr CK_FLAGS CKF_LOGIN_REQUIRED = 0x00000004UL;
constexpr CK_FLAGS CKF_USER_PIN_INITIALIZED = 0x00000008UL;
constexpr CK_FLAGS CKF_PROTECTED_AUTHENTICATION_PATH = 0x00000100UL;
constexpr CK_FLAGS CKF_TOKEN_INITIALIZED = 0x00000400UL;
constexpr CK_FLAGS CKF_USER_PIN_COUNT_LOW = 0x00010000UL;
constexpr CK_FLAGS CKF_USER_PIN_FINAL_TRY = 0x00020000UL;
constexpr CK_FLAGS CKF_USER_PIN_LOCKED = 0x00040000UL;
constexpr CK_FLAGS CKF_RW_SESSION = 0x00000002UL;
constexpr CK_FLAGS CKF_SERIAL_SESSION = 0x00000004UL;
constexpr CK_FLAGS CKF_OS_LOCKING_OK = 0x00000002UL;

constexpr CK_USER_TYPE CKU_USER = 1UL;

constexpr CK_OBJECT_CLASS CKO_CERTIFICATE = 0x00000001UL;
constexpr CK_OBJECT_CLASS CKO_PUBLIC_KEY = 0x00000002UL;
constexpr CK_OBJECT_CLASS CKO_PRIVATE_KEY = 0x00000003UL;

constexpr CK_CERTIFICATE_TYPE CKC_X_509 = 0x00000000UL;

constexpr CK_KEY_TYPE CKK_RSA = 0x00000000UL;
constexpr CK_KEY_TYPE CKK_DSA = 0x00000001UL;
constexpr CK_KEY_TYPE CKK_EC = 0x00000003UL;

constexpr CK_ATTRIBUTE_TYPE CKA_CLASS = 0x00000000UL;
constexpr CK_ATTRIBUTE_TYPE CKA_TOKEN = 0x00000001UL;
constexpr CK_ATTRIBUTE_TYPE CKA_PRIVATE = 0x00000002UL;
constexpr CK_ATTRIBUTE_TYPE CKA_LABEL = 0x00000003UL;
constexpr CK_ATTRIBUTE_TYPE CKA_VALUE = 0x00000011UL;
constexpr CK_ATTRIBUTE_TYPE CKA_CERTIFICATE_TYPE = 0x00000080UL;
constexpr CK_ATTRIBUTE_TYPE CKA_SUBJECT = 0x00000101UL;
constexpr CK_ATTRIBUTE_TYPE CKA_KEY_TYPE = 0x00000100UL;
constexpr CK_ATTRIBUTE_TYPE CKA_ID = 0x00000102UL;
constexpr CK_ATTRIBUTE_TYPE CKA_SENSITIVE = 0x00000103UL;
constexpr CK_ATTRIBUTE_TYPE CKA_SIGN = 0x00000108UL;
constexpr CK_ATTRIBUTE_TYPE CKA_VERIFY = 0x0000010AUL;
constexpr CK_ATTRIBUTE_TYPE CKA_MODULUS = 0x00000120UL;
constexpr CK_ATTRIBUTE_TYPE CKA_MODULUS_BITS = 0x00000121UL;
constexpr CK_ATTRIBUTE_TYPE CKA_PUBLIC_EXPONENT = 0x00000122UL;
constexpr CK_ATTRIBUTE_TYPE CKA_EXTRACTABLE = 0x00000162UL;
constexpr CK_ATTRIBUTE_TYPE CKA_EC_PARAMS = 0x00000180UL;
constexpr CK_ATTRIBUTE_TYPE CKA_EC_POINT = 0x00000181UL;
constexpr CK_ATTRIBUTE_TYPE CKA_ALWAYS_AUTHENTICATE = 0x00000202UL;

constexpr CK_MECHANISM_TYPE CKM_RSA_PKCS_KEY_PAIR_GEN = 0x00000000UL;
constexpr CK_MECHANISM_TYPE CKM_RSA_PKCS = 0x00000001UL;
constexpr CK_MECHANISM_TYPE CKM_SHA256_RSA_PKCS = 0x00000040UL;
constexpr CK_MECHANISM_TYPE CKM_EC_KEY_PAIR_GEN = 0x00001040UL;
constexpr CK_MECHANISM_TYPE CKM_ECDSA = 0x00001041UL;

}  // namespace p11
}  // namespace credport

#if defined(_WIN32)
#pragma pack(pop, credport_cryptoki)
#endif

// A cheap guard that holds on every platform: no padding may creep in
// between the 68 pointers (the cross-check against a system pkcs11.h in the
// tests is the thorough one).
static_assert(sizeof(credport::p11::CK_FUNCTION_LIST) ==
                  offsetof(credport::p11::CK_FUNCTION_LIST, C_Initialize) + 68 * sizeof(void (*)()),
              "CK_FUNCTION_LIST must hold exactly 68 function pointers after its version");

#endif  // CREDPORT_PKCS11_ABI_H_
