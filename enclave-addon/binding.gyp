# credport_enclave: one addon, common code plus one key store per platform
# (keytar's layout). PKCS#11 is built everywhere; the Secure Enclave on macOS,
# with a stub that reports "unavailable" elsewhere. The peer-socket lookup:
# netlink sock_diag on Linux, libproc on macOS, ENOTSUP elsewhere.
{
  "targets": [
    {
      "target_name": "credport_enclave",
      "sources": [
        "src/binding.cc",
        "src/js_interop.cc",
        "src/errors.cc",
        "src/der.cc",
        "src/pkcs11.cc"
      ],
      # node-addon-api with C++ exceptions: the key stores throw KeyError,
      # which the async workers turn into rejected Promises.
      "dependencies": [
        "<!(node -p \"require('node-addon-api').targets\"):node_addon_api_except_all"
      ],
      # Node-API 8 is in every Node the daemon supports (>= 20.19).
      "defines": ["NAPI_VERSION=8"],
      "cflags_cc": ["-std=c++17", "-Wall", "-Wextra"],
      "conditions": [
        ["OS=='mac'", {
          "sources": ["src/secure_enclave_darwin.cc", "src/peer_darwin.cc", "src/peer_address.cc"],
          "link_settings": {
            "libraries": ["-framework Security", "-framework CoreFoundation", "-framework LocalAuthentication", "-lobjc"]
          },
          "xcode_settings": {
            "CLANG_CXX_LANGUAGE_STANDARD": "c++17",
            "GCC_ENABLE_CPP_EXCEPTIONS": "YES",
            # Node 20 needs 11.
            "MACOSX_DEPLOYMENT_TARGET": "11.0",
            "OTHER_CPLUSPLUSFLAGS": ["-Wall", "-Wextra"]
          }
        }, {
          "sources": ["src/secure_enclave_unsupported.cc"]
        }],
        ["OS=='linux'", {
          "sources": ["src/peer_linux.cc", "src/peer_address.cc"],
          "link_settings": { "libraries": ["-ldl"] }
        }],
        ["OS!='linux' and OS!='mac'", {
          "sources": ["src/peer_unsupported.cc"]
        }],
        ["OS=='win'", {
          "defines": ["WIN32_LEAN_AND_MEAN", "NOMINMAX"]
        }]
      ]
    }
  ]
}
