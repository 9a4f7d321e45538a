#include "der.h"

namespace credport {
namespace der {

namespace {

constexpr uint8_t kTagInteger = 0x02;
constexpr uint8_t kTagOctetString = 0x04;
constexpr uint8_t kTagSequence = 0x30;
constexpr size_t kP256PointSize = 65;  // 0x04 || X(32) || Y(32)
constexpr size_t kMaxFieldSize = 66;   // P-521: the largest curve anyone signs with

bool Fail(std::string* error, const char* message) {
  if (error != nullptr) *error = message;
  return false;
}

// Reads a DER length at data[*pos]; short form, or long form with one byte
// (our structures never exceed 255 bytes). Rejects non-minimal encodings.
bool ReadLength(const uint8_t* data, size_t len, size_t* pos, size_t* out) {
  if (*pos >= len) return false;
  const uint8_t first = data[(*pos)++];
  if (first < 0x80) {
    *out = first;
    return true;
  }
  if (first != 0x81 || *pos >= len) return false;
  const uint8_t value = data[(*pos)++];
  if (value < 0x80) return false;  // should have used the short form
  *out = value;
  return true;
}

bool ReadInteger(const uint8_t* data, size_t len, size_t* pos, size_t field_size, uint8_t* out, std::string* error) {
  if (*pos >= len || data[(*pos)++] != kTagInteger) return Fail(error, "expected an INTEGER");
  size_t n = 0;
  if (!ReadLength(data, len, pos, &n) || n == 0 || n > len - *pos) return Fail(error, "bad INTEGER length");
  const uint8_t* v = data + *pos;
  *pos += n;
  if ((v[0] & 0x80) != 0) return Fail(error, "negative INTEGER in signature");
  if (v[0] == 0 && n > 1) {
    if ((v[1] & 0x80) == 0) return Fail(error, "INTEGER has a superfluous leading zero");
    ++v;
    --n;
  }
  if (n > field_size) return Fail(error, "INTEGER is longer than the curve's field");
  // Right-align: short values (leading zero bytes dropped by DER) get padded.
  for (size_t i = 0; i < field_size - n; ++i) out[i] = 0;
  for (size_t i = 0; i < n; ++i) out[field_size - n + i] = v[i];
  return true;
}

void AppendLength(std::vector<uint8_t>* out, size_t n) {
  if (n >= 0x80) out->push_back(0x81);
  out->push_back(static_cast<uint8_t>(n));
}

void AppendInteger(std::vector<uint8_t>* out, const uint8_t* v, size_t n) {
  while (n > 1 && v[0] == 0) {  // minimal: no leading zero bytes...
    ++v;
    --n;
  }
  const bool pad = (v[0] & 0x80) != 0;  // ...except one that keeps the value positive
  out->push_back(kTagInteger);
  AppendLength(out, n + (pad ? 1 : 0));
  if (pad) out->push_back(0);
  out->insert(out->end(), v, v + n);
}

}  // namespace

bool EcdsaDerToRaw(const uint8_t* der, size_t der_len, size_t field_size, std::vector<uint8_t>* out,
                   std::string* error) {
  if (field_size == 0 || field_size > kMaxFieldSize) return Fail(error, "unsupported field size");
  size_t pos = 0;
  if (der_len < 2 || der[pos++] != kTagSequence) return Fail(error, "signature is not a DER SEQUENCE");
  size_t body = 0;
  if (!ReadLength(der, der_len, &pos, &body) || body != der_len - pos) {
    return Fail(error, "SEQUENCE length does not match the signature length");
  }
  std::vector<uint8_t> raw(2 * field_size);
  if (!ReadInteger(der, der_len, &pos, field_size, raw.data(), error)) return false;
  if (!ReadInteger(der, der_len, &pos, field_size, raw.data() + field_size, error)) return false;
  if (pos != der_len) return Fail(error, "trailing bytes after the signature");
  *out = std::move(raw);
  return true;
}

bool EcdsaRawToDer(const uint8_t* raw, size_t raw_len, std::vector<uint8_t>* out, std::string* error) {
  if (raw_len == 0 || raw_len % 2 != 0 || raw_len > 2 * kMaxFieldSize) {
    return Fail(error, "raw signature must be r||s of equal halves");
  }
  const size_t half = raw_len / 2;
  std::vector<uint8_t> ints;
  AppendInteger(&ints, raw, half);
  AppendInteger(&ints, raw + half, half);
  std::vector<uint8_t> der;
  der.push_back(kTagSequence);
  AppendLength(&der, ints.size());
  der.insert(der.end(), ints.begin(), ints.end());
  *out = std::move(der);
  return true;
}

bool UnwrapEcPoint(const uint8_t* data, size_t len, std::vector<uint8_t>* out, std::string* error) {
  const uint8_t* point = nullptr;
  if (len == kP256PointSize && data[0] == 0x04) {
    point = data;  // the bare point (non-conforming tokens)
  } else if (len >= 2 && data[0] == kTagOctetString) {
    size_t pos = 1;
    size_t n = 0;
    // Some tokens use the (BER) long form 81 41 for the 65-byte point.
    const bool long_form = data[1] == 0x81 && len >= 3 && data[2] == kP256PointSize;
    if (long_form) {
      n = data[2];
      pos = 3;
    } else if (!ReadLength(data, len, &pos, &n)) {
      return Fail(error, "EC point is not a DER OCTET STRING");
    }
    if (n != len - pos) return Fail(error, "EC point OCTET STRING length does not match");
    if (n == 33 && (data[pos] == 0x02 || data[pos] == 0x03)) {
      return Fail(error, "the token returned a compressed EC point, which credport does not decode");
    }
    if (n != kP256PointSize || data[pos] != 0x04) return Fail(error, "EC point is not an uncompressed P-256 point");
    point = data + pos;
  } else if (len == 33 && (data[0] == 0x02 || data[0] == 0x03)) {
    return Fail(error, "the token returned a compressed EC point, which credport does not decode");
  } else {
    return Fail(error, "EC point is neither a DER OCTET STRING nor an uncompressed P-256 point");
  }
  out->assign(point, point + kP256PointSize);
  return true;
}

}  // namespace der
}  // namespace credport
