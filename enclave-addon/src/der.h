// The encodings that differ between backends, converted in one place:
// ECDSA signatures (DER ECDSA-Sig-Value <-> fixed-width r||s, which JWS and
// PKCS#11's CKM_ECDSA use) and EC points (CKA_EC_POINT may be a DER OCTET
// STRING or the bare point). Plain C++ with no Node or platform dependency.
#ifndef CREDPORT_DER_H_
#define CREDPORT_DER_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace credport {
namespace der {

// SEQUENCE { r INTEGER, s INTEGER } (strict DER) -> r||s, each left-padded to
// `field_size` bytes (32 for P-256). Returns false and sets *error when the
// input is not a well-formed signature of that size.
bool EcdsaDerToRaw(const uint8_t* der, size_t der_len, size_t field_size, std::vector<uint8_t>* out,
                   std::string* error);

// r||s (even length, at most 2 * 66 bytes) -> minimal DER.
bool EcdsaRawToDer(const uint8_t* raw, size_t raw_len, std::vector<uint8_t>* out, std::string* error);

// A CKA_EC_POINT value -> the 65-byte uncompressed P-256 point 04||X||Y.
// Accepts the DER OCTET STRING the specification requires and the raw point
// some tokens return instead.
bool UnwrapEcPoint(const uint8_t* data, size_t len, std::vector<uint8_t>* out, std::string* error);

}  // namespace der
}  // namespace credport

#endif  // CREDPORT_DER_H_
