{
  "targets": [
    {
      "target_name": "clinilora_native",
      "sources": ["src/addon.cc"],
      "cflags_cc": ["-O3", "-std=c++17", "-fno-exceptions"],
      "cflags_cc!": ["-fno-rtti"],
      "libraries": ["-lopenblas"]
    }
  ]
}
