{
  "targets": [
    {
      "target_name": "segwal_native",
      "sources": [
        "native/addon.cc",
        "native/errors.cc",
        "native/crc32.cc",
        "native/dir_lock.cc",
        "native/segment_file.cc",
        "native/instance.cc",
        "native/writer_thread.cc",
        "native/writer_lane.cc"
      ],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")"],
      "defines": ["NAPI_VERSION=8", "NAPI_CPP_EXCEPTIONS"],
      "cflags!": ["-fno-exceptions"],
      "cflags_cc!": ["-fno-exceptions"],
      "cflags_cc": ["-std=c++17", "-O3", "-Wall", "-Wextra"]
    }
  ]
}
