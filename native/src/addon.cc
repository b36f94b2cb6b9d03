// clinilora native matmul addon (N-API, C ABI only: no node-addon-api dependency).
//
// gemm: C[b] = op(A[b % batchA]) · op(B[b % batchB]) for b < batch, row-major float32, where op is
// an optional transpose; the modulo batch mapping is the one tfjs's backends use. Inputs and the
// output are Float32Array views (over an ArrayBuffer or the wasm backend's SharedArrayBuffer heap):
// nothing is copied. The work runs on our own small thread pool (main thread + workers that block
// on a condition variable when idle), each piece through single-threaded OpenBLAS sgemm: OpenBLAS's
// own threads spin-wait after every call, which would steal the core the wasm pool needs next.
//
// int8 weight-only matmuls (codes [out, in] int8, rowAbsmax [out]; w = f32(code · absmax) · f32(1/127),
// rounded exactly as src/kernels/int8.ts `dequantizeInt8` and bitsandbytes do):
//   gemmInt8NT: Y [m, out] = X [m, in] · Wᵀ      (forward)
//   gemmInt8NN: Y [m, in]  = DY [m, out] · W     (input gradient)
// Blocks of W rows are dequantized into a per-thread scratch and multiplied with sgemm, so a float W
// is never materialised (O(out·in) dequant work against O(m·out·in) multiply work).
//
// NF4 weight-only matmuls (packed 4-bit codes [out·in / 2] + per-64 absmax, plain or double-quantized,
// as src/kernels/nf4.ts): gemmNF4NT (forward) and gemmNF4NN (input gradient), the same block scheme;
// with at most 4 rows of X the forward decodes codes straight into registers (decoding).
//
// Fused lm_head + cross-entropy (Liger's scheme: the input gradient is made in the forward):
//   linearCrossEntropy(h [n,D], wt [D,V], targets [n], weights [n], scale, nll [n], dh [n,D] | null)
// per chunk of rows: logits = h·wt (sgemm), per row lse and nll = lse − logit[t]; with dh, the row
// becomes (softmax − onehot(t))·w·scale in place and dh = dlogits·wtᵀ (sgemm). Logits never exist
// beyond one chunk a thread, and the backward pass has nothing to recompute.
#include <node_api.h>

#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <condition_variable>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

extern "C" {
// OpenBLAS CBLAS (declared here so any cblas.h alternative on the system does not matter).
enum { CblasRowMajor = 101 };
enum { CblasNoTrans = 111, CblasTrans = 112 };
void cblas_sgemm(int order, int transA, int transB, int m, int n, int k, float alpha, const float* a, int lda,
                 const float* b, int ldb, float beta, float* c, int ldc);
void openblas_set_num_threads(int n);
int openblas_get_num_threads(void);
char* openblas_get_config(void);
char* openblas_get_corename(void);
}

namespace {

// ---------------------------------------------------------------------------------------------
// Thread pool: run(n, fn) calls fn(0..n-1) with fn(0) on the caller; returns when all are done.
class Pool {
 public:
  ~Pool() { resize(1); }
  int size() const { return static_cast<int>(workers_.size()) + 1; }
  void resize(int n) {
    if (n < 1) n = 1;
    {
      std::unique_lock<std::mutex> lk(mu_);
      stop_ = true;
      ++generation_;
    }
    cv_.notify_all();
    for (auto& t : workers_) t.join();
    workers_.clear();
    stop_ = false;
    // The generation a worker starts from is fixed here, not read by the new thread: a job posted
    // before the thread first runs would otherwise look already seen (and run() would wait forever).
    const uint64_t start = generation_;
    for (int i = 1; i < n; ++i) workers_.emplace_back([this, i, start] { loop(i, start); });
  }
  void run(int n, const std::function<void(int)>& fn) {
    n = std::min(n, size());
    if (n <= 1) {
      fn(0);
      return;
    }
    {
      std::unique_lock<std::mutex> lk(mu_);
      job_ = &fn;
      jobThreads_ = n;
      pending_ = n - 1;
      ++generation_;
    }
    cv_.notify_all();
    fn(0);
    std::unique_lock<std::mutex> lk(mu_);
    done_.wait(lk, [this] { return pending_ == 0; });
    job_ = nullptr;
  }

 private:
  void loop(int id, uint64_t seen) {
    for (;;) {
      const std::function<void(int)>* job;
      {
        std::unique_lock<std::mutex> lk(mu_);
        cv_.wait(lk, [&] { return stop_ || generation_ != seen; });
        if (stop_) return;
        seen = generation_;
        if (id >= jobThreads_) continue;
        job = job_;
      }
      (*job)(id);
      std::unique_lock<std::mutex> lk(mu_);
      if (--pending_ == 0) done_.notify_one();
    }
  }
  std::vector<std::thread> workers_;
  std::mutex mu_;
  std::condition_variable cv_, done_;
  const std::function<void(int)>* job_ = nullptr;
  int jobThreads_ = 0, pending_ = 0;
  uint64_t generation_ = 0;
  bool stop_ = false;
};

Pool* pool() {
  static Pool* p = [] {
    openblas_set_num_threads(1);
    auto* q = new Pool();
    q->resize(2);
    return q;
  }();
  return p;
}

// What the CPU runs, checked once: each hand-written kernel has a portable fallback.
// CLINILORA_NATIVE_ISA=avx512 (no VBMI), =avx2 or =scalar caps it, so the tests can run every path on
// one machine (the JS loader refuses any other value before this library loads).
int isaCap() {
  const char* v = std::getenv("CLINILORA_NATIVE_ISA");
  if (v == nullptr) return 3;
  const std::string s(v);
  return s == "scalar" ? 0 : s == "avx2" ? 1 : s == "avx512" ? 2 : 3;
}
const bool kAvx2 = [] {
  __builtin_cpu_init();
  return isaCap() >= 1 && __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
}();
const bool kAvx512 = isaCap() >= 2 && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw");
const bool kAvx512Vbmi = kAvx512 && isaCap() >= 3 && __builtin_cpu_supports("avx512vbmi");

// Work below this many multiply-adds runs on one thread: measured here, waking the second thread costs
// ~7 µs and pays from about 1M multiply-adds (96³ equal, 128³ 46 → 30 µs).
constexpr double kSplitMacs = 1.0e6;

// ---------------------------------------------------------------------------------------------
// N-API helpers
#define CHECK(call)                                                     \
  do {                                                                  \
    if ((call) != napi_ok) {                                            \
      napi_throw_error(env, nullptr, "clinilora-native: N-API failure"); \
      return nullptr;                                                   \
    }                                                                   \
  } while (0)

bool throwErr(napi_env env, const std::string& msg) {
  napi_throw_type_error(env, nullptr, ("clinilora-native: " + msg).c_str());
  return false;
}

template <typename T>
bool typedArg(napi_env env, napi_value v, napi_typedarray_type want, const char* name, T** data, size_t* len) {
  bool is = false;
  if (napi_is_typedarray(env, v, &is) != napi_ok || !is) return throwErr(env, std::string(name) + " must be a typed array");
  napi_typedarray_type type;
  void* ptr = nullptr;
  if (napi_get_typedarray_info(env, v, &type, len, &ptr, nullptr, nullptr) != napi_ok) return throwErr(env, std::string(name) + ": cannot read");
  if (type != want) return throwErr(env, std::string(name) + " has the wrong element type");
  if (ptr == nullptr && *len > 0) return throwErr(env, std::string(name) + ": detached buffer");
  *data = static_cast<T*>(ptr);
  return true;
}

bool intArg(napi_env env, napi_value v, const char* name, int64_t* out, int64_t lo) {
  double d;
  if (napi_get_value_double(env, v, &d) != napi_ok || d != static_cast<double>(static_cast<int64_t>(d)) || d < lo || d > 2147483647.0)
    return throwErr(env, std::string(name) + " must be an integer >= " + std::to_string(lo));
  *out = static_cast<int64_t>(d);
  return true;
}

bool boolArg(napi_env env, napi_value v, bool* out) {
  return napi_get_value_bool(env, v, out) == napi_ok || throwErr(env, "flag must be a boolean");
}

// ---------------------------------------------------------------------------------------------
// One sgemm on a block of C's rows [r0, r1) and columns [c0, c1) (row-major, leading dims given).
inline void sgemmBlock(bool ta, bool tb, int64_t m, int64_t n, int64_t k, const float* a, const float* b, float* c,
                       int64_t r0, int64_t r1, int64_t c0, int64_t c1, float beta) {
  if (r1 <= r0 || c1 <= c0) return;
  const int64_t lda = ta ? m : k, ldb = tb ? k : n;
  const float* ap = ta ? a + r0 : a + r0 * lda;     // A is [k, m] when transposed
  const float* bp = tb ? b + c0 * ldb : b + c0;     // B is [n, k] when transposed
  if (k == 0) {
    for (int64_t r = r0; r < r1; ++r) std::fill(c + r * n + c0, c + r * n + c1, 0.0f);
    return;
  }
  cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, static_cast<int>(r1 - r0),
              static_cast<int>(c1 - c0), static_cast<int>(k), 1.0f, ap, static_cast<int>(lda), bp, static_cast<int>(ldb), beta,
              c + r0 * n + c0, static_cast<int>(n));
}

// Splits [0, len) into `parts` pieces aligned to `align`.
inline void splitRange(int64_t len, int parts, int idx, int64_t align, int64_t* s, int64_t* e) {
  int64_t units = (len + align - 1) / align;
  *s = std::min(len, units * idx / parts * align);
  *e = std::min(len, units * (idx + 1) / parts * align);
}

// gemm(a, b, c, batchA, batchB, batch, m, n, k, transA, transB)
napi_value Gemm(napi_env env, napi_callback_info info) {
  size_t argc = 11;
  napi_value argv[11];
  CHECK(napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr));
  if (argc != 11) return throwErr(env, "gemm takes 11 arguments"), nullptr;
  float *a, *b, *c;
  size_t la, lb, lc;
  int64_t batchA, batchB, batch, m, n, k;
  bool ta, tb;
  if (!typedArg(env, argv[0], napi_float32_array, "a", &a, &la) || !typedArg(env, argv[1], napi_float32_array, "b", &b, &lb) ||
      !typedArg(env, argv[2], napi_float32_array, "c", &c, &lc) || !intArg(env, argv[3], "batchA", &batchA, 1) ||
      !intArg(env, argv[4], "batchB", &batchB, 1) || !intArg(env, argv[5], "batch", &batch, 1) || !intArg(env, argv[6], "m", &m, 0) ||
      !intArg(env, argv[7], "n", &n, 0) || !intArg(env, argv[8], "k", &k, 0) || !boolArg(env, argv[9], &ta) || !boolArg(env, argv[10], &tb))
    return nullptr;
  if (static_cast<int64_t>(la) != batchA * m * k || static_cast<int64_t>(lb) != batchB * k * n || static_cast<int64_t>(lc) != batch * m * n)
    return throwErr(env, "gemm: array lengths do not match batch/m/n/k"), nullptr;
  if (batch % batchA != 0 && batch % batchB != 0) return throwErr(env, "gemm: batch is not a multiple of batchA or batchB"), nullptr;
  const double macs = static_cast<double>(batch) * m * n * k;
  Pool* p = pool();
  const int threads = macs < kSplitMacs ? 1 : p->size();
  // Few batch items: split each product into row (or column) blocks; many: split the batch. A single
  // product with a long inner dimension (lm_head's dh = dlogits [c, V] · W [V, D]) splits k instead:
  // each thread then streams half of both operands, and the partial sums are added at the end.
  const bool splitBatch = batch >= 4 * threads || batch % threads == 0;
  if (threads > 1 && batch == 1 && k >= 8 * std::max(m, n)) {
    std::vector<float> partial(static_cast<size_t>((threads - 1) * m * n));
    p->run(threads, [&](int t) {
      int64_t s, e;
      splitRange(k, threads, t, 64, &s, &e);
      float* dst = t == 0 ? c : partial.data() + (t - 1) * m * n;
      // A's k-range: columns s..e of [m, k], or rows s..e of [k, m] when transposed; B's likewise.
      const float* as = ta ? a + s * m : a + s;
      const float* bs = tb ? b + s : b + s * n;
      if (e <= s) {
        std::fill(dst, dst + m * n, 0.0f);
        return;
      }
      cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, static_cast<int>(m), static_cast<int>(n),
                  static_cast<int>(e - s), 1.0f, as, static_cast<int>(ta ? m : k), bs, static_cast<int>(tb ? k : n), 0.0f, dst,
                  static_cast<int>(n));
    });
    // Add the partial sums, split over rows across the threads.
    p->run(threads, [&](int t) {
      int64_t s, e;
      splitRange(m * n, threads, t, 16, &s, &e);
      for (int u = 0; u < threads - 1; ++u) {
        const float* src = partial.data() + u * m * n;
        for (int64_t i = s; i < e; ++i) c[i] += src[i];
      }
    });
    return nullptr;
  }
  p->run(threads, [&](int t) {
    if (splitBatch) {
      int64_t s, e;
      splitRange(batch, threads, t, 1, &s, &e);
      for (int64_t bi = s; bi < e; ++bi)
        sgemmBlock(ta, tb, m, n, k, a + (bi % batchA) * m * k, b + (bi % batchB) * k * n, c + bi * m * n, 0, m, 0, n, 0.0f);
      return;
    }
    for (int64_t bi = 0; bi < batch; ++bi) {
      const float* ab = a + (bi % batchA) * m * k;
      const float* bb = b + (bi % batchB) * k * n;
      float* cb = c + bi * m * n;
      int64_t s, e;
      if (m >= n) {
        splitRange(m, threads, t, 8, &s, &e);
        sgemmBlock(ta, tb, m, n, k, ab, bb, cb, s, e, 0, n, 0.0f);
      } else {
        splitRange(n, threads, t, 16, &s, &e);
        sgemmBlock(ta, tb, m, n, k, ab, bb, cb, 0, m, s, e, 0.0f);
      }
    }
  });
  return nullptr;
}

// ---------------------------------------------------------------------------------------------
// int8 weight-only. Rows of W per dequantized block (scratch 64 × in floats per thread).
constexpr int64_t kInt8Block = 64;
constexpr float kInv127 = 7.874015718698502e-3f;  // bitsandbytes' float32 1/127

inline void dequantRows(const int8_t* codes, const float* scales, int64_t r0, int64_t r1, int64_t in, float* out) {
  for (int64_t r = r0; r < r1; ++r) {
    const int8_t* src = codes + r * in;
    const float s = scales[r];
    float* dst = out + (r - r0) * in;
    for (int64_t j = 0; j < in; ++j) dst[j] = static_cast<float>(static_cast<float>(src[j]) * s) * kInv127;
  }
}

// With at most 4 rows of X (decoding), the forward reads each code once straight into a register:
// w = f32(f32(q · absmax) · f32(1/127)) as dequantRows, 16 a step, 4 independent chains a row of X.
template <int M>
__attribute__((target("avx512f,avx512bw"))) void int8FusedRowsAvx512(const int8_t* codes, const float* scales, const float* x, int64_t out,
                                                                      int64_t in, int64_t r0, int64_t r1, float* y) {
  const __m512 inv = _mm512_set1_ps(kInv127);
  for (int64_t r = r0; r < r1; ++r) {
    const int8_t* src = codes + r * in;
    const float sc = scales[r];
    const __m512 s = _mm512_set1_ps(sc);
    __m512 acc[M][4];
    for (int j = 0; j < M; ++j)
      for (int k = 0; k < 4; ++k) acc[j][k] = _mm512_setzero_ps();
    int64_t c = 0;
#define CLINILORA_INT8_STEP(k)                                                                                            \
  {                                                                                                                       \
    const __m512 q = _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(src + c + 16 * (k))))); \
    const __m512 wv = _mm512_mul_ps(_mm512_mul_ps(q, s), inv);                                                             \
    for (int j = 0; j < M; ++j) acc[j][k] = _mm512_fmadd_ps(wv, _mm512_loadu_ps(x + j * in + c + 16 * (k)), acc[j][k]);       \
  }
    for (; c + 64 <= in; c += 64) {
      CLINILORA_INT8_STEP(0)
      CLINILORA_INT8_STEP(1)
      CLINILORA_INT8_STEP(2)
      CLINILORA_INT8_STEP(3)
    }
    for (; c + 16 <= in; c += 16) CLINILORA_INT8_STEP(0)
#undef CLINILORA_INT8_STEP
    for (int j = 0; j < M; ++j) {
      float tail = 0.0f;
      for (int64_t cc = c; cc < in; ++cc) tail += static_cast<float>(static_cast<float>(src[cc]) * sc) * kInv127 * x[j * in + cc];
      y[j * out + r] = _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(acc[j][0], acc[j][1]), _mm512_add_ps(acc[j][2], acc[j][3]))) + tail;
    }
  }
}

bool int8FusedRows(const int8_t* codes, const float* scales, const float* x, int64_t m, int64_t out, int64_t in, int64_t r0, int64_t r1, float* y) {
  if (!kAvx512) return false;
  switch (m) {
    case 1: int8FusedRowsAvx512<1>(codes, scales, x, out, in, r0, r1, y); return true;
    case 2: int8FusedRowsAvx512<2>(codes, scales, x, out, in, r0, r1, y); return true;
    case 3: int8FusedRowsAvx512<3>(codes, scales, x, out, in, r0, r1, y); return true;
    case 4: int8FusedRowsAvx512<4>(codes, scales, x, out, in, r0, r1, y); return true;
    default: return false;
  }
}

bool int8Args(napi_env env, napi_callback_info info, float** x, int8_t** codes, float** scales, float** y, int64_t* m, int64_t* out,
              int64_t* in, size_t* lx, size_t* ly) {
  size_t argc = 7;
  napi_value argv[7];
  if (napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr) != napi_ok || argc != 7) return throwErr(env, "int8 gemm takes 7 arguments");
  size_t lc, ls;
  if (!typedArg(env, argv[0], napi_float32_array, "x", x, lx) || !typedArg(env, argv[1], napi_int8_array, "codes", codes, &lc) ||
      !typedArg(env, argv[2], napi_float32_array, "rowAbsmax", scales, &ls) || !typedArg(env, argv[3], napi_float32_array, "y", y, ly) ||
      !intArg(env, argv[4], "m", m, 0) || !intArg(env, argv[5], "out", out, 1) || !intArg(env, argv[6], "in", in, 1))
    return false;
  if (static_cast<int64_t>(lc) != *out * *in || static_cast<int64_t>(ls) != *out) return throwErr(env, "codes/rowAbsmax do not match out × in");
  return true;
}

// gemmInt8NT(x [m,in], codes [out,in], rowAbsmax [out], y [m,out], m, out, in): y = x · Wᵀ.
// Threads take disjoint column blocks of y (= row blocks of W).
napi_value GemmInt8NT(napi_env env, napi_callback_info info) {
  float *x, *scales, *y;
  int8_t* codes;
  int64_t m, out, in;
  size_t lx, ly;
  if (!int8Args(env, info, &x, &codes, &scales, &y, &m, &out, &in, &lx, &ly)) return nullptr;
  if (static_cast<int64_t>(lx) != m * in || static_cast<int64_t>(ly) != m * out) return throwErr(env, "x/y do not match m, out, in"), nullptr;
  if (m == 0) return nullptr;
  Pool* p = pool();
  const int threads = static_cast<double>(std::max<int64_t>(m, 16)) * out * in < kSplitMacs ? 1 : p->size();
  const int64_t blocks = (out + kInt8Block - 1) / kInt8Block;
  p->run(threads, [&](int t) {
    if (int8FusedRows(codes, scales, x, m, out, in, blocks * t / threads * kInt8Block, std::min(out, blocks * (t + 1) / threads * kInt8Block), y)) return;
    std::vector<float> w(static_cast<size_t>(kInt8Block * in));
    for (int64_t blk = blocks * t / threads; blk < blocks * (t + 1) / threads; ++blk) {
      const int64_t r0 = blk * kInt8Block, r1 = std::min(out, r0 + kInt8Block);
      dequantRows(codes, scales, r0, r1, in, w.data());
      // y[:, r0:r1] = x [m, in] · w[r1-r0, in]ᵀ
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, static_cast<int>(m), static_cast<int>(r1 - r0), static_cast<int>(in), 1.0f, x,
                  static_cast<int>(in), w.data(), static_cast<int>(in), 0.0f, y + r0, static_cast<int>(out));
    }
  });
  return nullptr;
}

// gemmInt8NN(dy [m,out], codes [out,in], rowAbsmax [out], dx [m,in], m, out, in): dx = dy · W.
// Threads take disjoint row blocks of dx and each walks all of W (dequantized block by block).
napi_value GemmInt8NN(napi_env env, napi_callback_info info) {
  float *dy, *scales, *dx;
  int8_t* codes;
  int64_t m, out, in;
  size_t ldy, ldx;
  if (!int8Args(env, info, &dy, &codes, &scales, &dx, &m, &out, &in, &ldy, &ldx)) return nullptr;
  if (static_cast<int64_t>(ldy) != m * out || static_cast<int64_t>(ldx) != m * in) return throwErr(env, "dy/dx do not match m, out, in"), nullptr;
  Pool* p = pool();
  // Splitting rows makes each thread dequantize all of W; split columns of dx (= columns of W) instead
  // when m is small.
  const int threads = static_cast<double>(m) * out * in < kSplitMacs ? 1 : p->size();
  const bool byRows = m >= 64 * threads;
  p->run(threads, [&](int t) {
    int64_t s, e;
    splitRange(byRows ? m : in, threads, t, byRows ? 8 : 16, &s, &e);
    if (e <= s) return;
    const int64_t cols = byRows ? in : e - s;
    std::vector<float> w(static_cast<size_t>(kInt8Block * cols));
    const float* dyp = byRows ? dy + s * out : dy;
    float* dxp = byRows ? dx + s * in : dx + s;
    const int64_t rows = byRows ? e - s : m;
    for (int64_t r0 = 0; r0 < out; r0 += kInt8Block) {
      const int64_t r1 = std::min(out, r0 + kInt8Block);
      for (int64_t r = r0; r < r1; ++r) {
        const int8_t* src = codes + r * in + (byRows ? 0 : s);
        const float sc = scales[r];
        float* dst = w.data() + (r - r0) * cols;
        for (int64_t j = 0; j < cols; ++j) dst[j] = static_cast<float>(static_cast<float>(src[j]) * sc) * kInv127;
      }
      // dx[rows, cols] (+)= dy[rows, r0:r1] · w[r1-r0, cols]
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, static_cast<int>(rows), static_cast<int>(cols), static_cast<int>(r1 - r0),
                  1.0f, dyp + r0, static_cast<int>(out), w.data(), static_cast<int>(cols), r0 == 0 ? 0.0f : 1.0f, dxp,
                  static_cast<int>(in));
    }
    if (out == 0)
      for (int64_t r = 0; r < rows; ++r) std::fill(dxp + r * in, dxp + r * in + cols, 0.0f);
  });
  return nullptr;
}


// ---------------------------------------------------------------------------------------------
// Fused linear + cross-entropy. Written by hand: the softmax over 32,064 logits a row is most of a
// LoRA step's non-matmul time, and no library offers it fused with the two products.

// x[i] ← exp(x[i] − shift), returns Σ x[i]. AVX2+FMA: Cephes' expf range reduction and degree-5
// polynomial (relative error ≈ 1e-7), with a scalar std::exp fallback on CPUs without AVX2.
__attribute__((target("avx2,fma"))) float expShiftSumAvx2(float* x, int64_t n, float shift) {
  const __m256 vshift = _mm256_set1_ps(shift), lo = _mm256_set1_ps(-87.3f), log2e = _mm256_set1_ps(1.44269504088896341f);
  const __m256 c1 = _mm256_set1_ps(0.693359375f), c2 = _mm256_set1_ps(-2.12194440e-4f);
  const __m256 p0 = _mm256_set1_ps(1.9875691500e-4f), p1 = _mm256_set1_ps(1.3981999507e-3f), p2 = _mm256_set1_ps(8.3334519073e-3f),
               p3 = _mm256_set1_ps(4.1665795894e-2f), p4 = _mm256_set1_ps(1.6666665459e-1f), p5 = _mm256_set1_ps(5.0000001201e-1f),
               one = _mm256_set1_ps(1.0f);
  __m256 acc = _mm256_setzero_ps();
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    __m256 v = _mm256_max_ps(_mm256_sub_ps(_mm256_loadu_ps(x + i), vshift), lo);
    const __m256 fx = _mm256_round_ps(_mm256_mul_ps(v, log2e), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    v = _mm256_fnmadd_ps(fx, c1, v);
    v = _mm256_fnmadd_ps(fx, c2, v);
    __m256 y = _mm256_fmadd_ps(p0, v, p1);
    y = _mm256_fmadd_ps(y, v, p2);
    y = _mm256_fmadd_ps(y, v, p3);
    y = _mm256_fmadd_ps(y, v, p4);
    y = _mm256_fmadd_ps(y, v, p5);
    y = _mm256_fmadd_ps(y, _mm256_mul_ps(v, v), _mm256_add_ps(v, one));
    const __m256i e = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(fx), _mm256_set1_epi32(127)), 23);
    y = _mm256_mul_ps(y, _mm256_castsi256_ps(e));
    _mm256_storeu_ps(x + i, y);
    acc = _mm256_add_ps(acc, y);
  }
  alignas(32) float lanes[8];
  _mm256_store_ps(lanes, acc);
  float sum = ((lanes[0] + lanes[1]) + (lanes[2] + lanes[3])) + ((lanes[4] + lanes[5]) + (lanes[6] + lanes[7]));
  for (; i < n; ++i) sum += (x[i] = std::exp(std::max(x[i] - shift, -87.3f)));
  return sum;
}

float expShiftSumScalar(float* x, int64_t n, float shift) {
  float sum = 0.0f;
  for (int64_t i = 0; i < n; ++i) sum += (x[i] = std::exp(std::max(x[i] - shift, -87.3f)));
  return sum;
}


inline float expShiftSum(float* x, int64_t n, float shift) { return kAvx2 ? expShiftSumAvx2(x, n, shift) : expShiftSumScalar(x, n, shift); }

constexpr int64_t kCeChunk = 128;  // rows a piece: 128 × 32064 floats = 16 MB of logits a thread

// linearCrossEntropy(h, wt, targets, weights, scale, nll, dh | null, n, D, V)
napi_value LinearCrossEntropy(napi_env env, napi_callback_info info) {
  size_t argc = 10;
  napi_value argv[10];
  CHECK(napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr));
  if (argc != 10) return throwErr(env, "linearCrossEntropy takes 10 arguments"), nullptr;
  float *h, *wt, *w, *nll, *dh = nullptr;
  int32_t* targets;
  size_t lh, lw, lt, lwt, ln, ldh = 0;
  double scaleD;
  int64_t n, D, V;
  napi_valuetype dhType;
  CHECK(napi_typeof(env, argv[6], &dhType));
  if (!typedArg(env, argv[0], napi_float32_array, "h", &h, &lh) || !typedArg(env, argv[1], napi_float32_array, "wt", &wt, &lwt) ||
      !typedArg(env, argv[2], napi_int32_array, "targets", &targets, &lt) || !typedArg(env, argv[3], napi_float32_array, "weights", &w, &lw) ||
      !typedArg(env, argv[5], napi_float32_array, "nll", &nll, &ln) ||
      (dhType != napi_null && !typedArg(env, argv[6], napi_float32_array, "dh", &dh, &ldh)) || !intArg(env, argv[7], "n", &n, 0) ||
      !intArg(env, argv[8], "D", &D, 1) || !intArg(env, argv[9], "V", &V, 1))
    return nullptr;
  if (napi_get_value_double(env, argv[4], &scaleD) != napi_ok) return throwErr(env, "scale must be a number"), nullptr;
  if (static_cast<int64_t>(lh) != n * D || static_cast<int64_t>(lwt) != D * V || static_cast<int64_t>(lt) != n ||
      static_cast<int64_t>(lw) != n || static_cast<int64_t>(ln) != n || (dh != nullptr && static_cast<int64_t>(ldh) != n * D))
    return throwErr(env, "linearCrossEntropy: array lengths do not match n, D, V"), nullptr;
  for (int64_t i = 0; i < n; ++i)
    if (targets[i] < 0 || targets[i] >= V) return throwErr(env, "linearCrossEntropy: a target is outside [0, V)"), nullptr;
  const float scale = static_cast<float>(scaleD);
  Pool* p = pool();
  const int64_t chunks = (n + kCeChunk - 1) / kCeChunk;
  // Each thread takes whole chunks of rows (a row's result never depends on the split).
  const int threads = static_cast<int>(std::min<int64_t>(p->size(), std::max<int64_t>(1, chunks)));
  const int64_t rowsPer = threads > 1 ? std::min(kCeChunk, (n + threads - 1) / threads) : kCeChunk;
  const int64_t pieces = (n + rowsPer - 1) / rowsPer;
  p->run(threads, [&](int t) {
    std::vector<float> logits(static_cast<size_t>(rowsPer * V));
    for (int64_t piece = t; piece < pieces; piece += threads) {
      const int64_t r0 = piece * rowsPer, r1 = std::min(n, r0 + rowsPer), c = r1 - r0;
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, static_cast<int>(c), static_cast<int>(V), static_cast<int>(D), 1.0f, h + r0 * D,
                  static_cast<int>(D), wt, static_cast<int>(V), 0.0f, logits.data(), static_cast<int>(V));
      for (int64_t r = 0; r < c; ++r) {
        float* row = logits.data() + r * V;
        const int32_t tg = targets[r0 + r];
        const float picked = row[tg];
        float m = row[0];
        for (int64_t j = 1; j < V; ++j) m = row[j] > m ? row[j] : m;
        const float sum = expShiftSum(row, V, m);
        nll[r0 + r] = (m + std::log(sum)) - picked;
        if (dh == nullptr) continue;
        const float g = w[r0 + r] * scale;
        const float f = g / sum;
        for (int64_t j = 0; j < V; ++j) row[j] *= f;
        row[tg] -= g;
      }
      if (dh != nullptr)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, static_cast<int>(c), static_cast<int>(D), static_cast<int>(V), 1.0f,
                    logits.data(), static_cast<int>(V), wt, static_cast<int>(V), 0.0f, dh + r0 * D, static_cast<int>(D));
    }
  });
  return nullptr;
}

// setThreads(n): size of our pool (OpenBLAS itself stays at 1 thread).
// ---------------------------------------------------------------------------------------------
// NF4 weight-only matmuls (src/kernels/nf4.ts layout: the [out, in] weight flattened row-major, blocks
// of `bs` elements with one absmax each, two 4-bit codes a byte, the FIRST element in the HIGH nibble;
// the absmax optionally double-quantized: absmax[b] = f32(code2[qAbsmax[b]] · absmax2[b / bs2]) + offset).
// w[e] = f32(codes[nibble(e)] · absmax[e / bs]), the rounding of `dequantizeNF4`.
//   gemmNF4NT: Y [m, out] = X [m, in] · Wᵀ      (forward; m ≤ kNF4FusedRows: fused decode + dot)
//   gemmNF4NN: Y [m, in]  = DY [m, out] · W     (input gradient)
// Written by hand: no BLAS reads 4-bit codes, and dequantizing the whole W first would hold a float
// copy (4 bytes a weight) — the memory the 4-bit format exists to save.
struct NF4W {
  const uint8_t* data;
  const float* codes;    // the 16 NF4 values
  const float* absmax;   // per block, or absmax2 (per nested block) when qAbsmax is set
  const uint8_t* qAbsmax;
  const float* code2;
  float offset;
  int64_t bs, bs2, out, in;
};

inline float nf4Scale(const NF4W& w, int64_t b) {
  if (w.qAbsmax == nullptr) return w.absmax[b];
  const float p = w.code2[w.qAbsmax[b]] * w.absmax[b / w.bs2];
  return p + w.offset;
}

// Decodes `nbytes` whole bytes (2·nbytes weights) through a 16-entry table.
__attribute__((target("avx2,fma"))) void nf4DecodeAvx2(const uint8_t* bytes, int64_t nbytes, const float* lut, float* out) {
  const __m256 lo = _mm256_loadu_ps(lut), hi = _mm256_loadu_ps(lut + 8);
  const __m256i shifts = _mm256_setr_epi32(4, 0, 4, 0, 4, 0, 4, 0), mask = _mm256_set1_epi32(15);
  const __m128i dup = _mm_setr_epi8(0, 0, 1, 1, 2, 2, 3, 3, -1, -1, -1, -1, -1, -1, -1, -1);
  int64_t i = 0;
  for (; i + 4 <= nbytes; i += 4) {
    int32_t four;
    std::memcpy(&four, bytes + i, 4);
    const __m256i idx = _mm256_and_si256(_mm256_srlv_epi32(_mm256_cvtepu8_epi32(_mm_shuffle_epi8(_mm_cvtsi32_si128(four), dup)), shifts), mask);
    const __m256 sel = _mm256_castsi256_ps(_mm256_slli_epi32(idx, 28));  // bit 3 → sign: codes 8..15
    _mm256_storeu_ps(out + 2 * i, _mm256_blendv_ps(_mm256_permutevar8x32_ps(lo, idx), _mm256_permutevar8x32_ps(hi, idx), sel));
  }
  for (; i < nbytes; ++i) {
    out[2 * i] = lut[bytes[i] >> 4];
    out[2 * i + 1] = lut[bytes[i] & 15];
  }
}

void nf4DecodeScalar(const uint8_t* bytes, int64_t nbytes, const float* lut, float* out) {
  for (int64_t i = 0; i < nbytes; ++i) {
    out[2 * i] = lut[bytes[i] >> 4];
    out[2 * i + 1] = lut[bytes[i] & 15];
  }
}

// Dequantizes flat elements [e0, e1) into out.
void nf4Dequant(const NF4W& w, int64_t e0, int64_t e1, float* out) {
  float lut[16];
  int64_t e = e0;
  while (e < e1) {
    const int64_t b = e / w.bs, end = std::min(e1, (b + 1) * w.bs);
    const float s = nf4Scale(w, b);
    for (int k = 0; k < 16; ++k) lut[k] = w.codes[k] * s;
    if ((e & 1) != 0 && e < end) *out++ = lut[w.data[e >> 1] & 15], ++e;
    const int64_t nbytes = (end - e) >> 1;
    if (kAvx2) nf4DecodeAvx2(w.data + (e >> 1), nbytes, lut, out);
    else nf4DecodeScalar(w.data + (e >> 1), nbytes, lut, out);
    out += 2 * nbytes;
    e += 2 * nbytes;
    if (e < end) *out++ = lut[w.data[e >> 1] >> 4], ++e;
  }
}

constexpr int64_t kNF4FusedRows = 4;
// Bytes ahead of the code stream the fused forward prefetches.
constexpr int64_t kNF4Prefetch = 2048;

// y[j, r] = Σ_c x[j, c] · w[r, c] for rows r in [r0, r1) of W and j < m ≤ kNF4FusedRows, decoding each
// 8 weights once into a register. Needs in % bs == 0 and bs % 8 == 0 (rows start on a block).
__attribute__((target("avx2,fma"))) void nf4FusedRowsAvx2(const NF4W& w, const float* x, int64_t m, int64_t r0, int64_t r1, float* y) {
  const __m256 codesLo = _mm256_loadu_ps(w.codes), codesHi = _mm256_loadu_ps(w.codes + 8);
  const __m256i shifts = _mm256_setr_epi32(4, 0, 4, 0, 4, 0, 4, 0), mask = _mm256_set1_epi32(15);
  const __m128i dup = _mm_setr_epi8(0, 0, 1, 1, 2, 2, 3, 3, -1, -1, -1, -1, -1, -1, -1, -1);
  const int64_t in = w.in, bs = w.bs;
  for (int64_t r = r0; r < r1; ++r) {
    __m256 acc[kNF4FusedRows];
    for (int64_t j = 0; j < m; ++j) acc[j] = _mm256_setzero_ps();
    const int64_t e0 = r * in;
    for (int64_t c0 = 0; c0 < in; c0 += bs) {
      const __m256 s = _mm256_set1_ps(nf4Scale(w, (e0 + c0) / bs));
      const __m256 lo = _mm256_mul_ps(codesLo, s), hi = _mm256_mul_ps(codesHi, s);
      const uint8_t* bytes = w.data + ((e0 + c0) >> 1);
      for (int64_t c = 0; c < bs; c += 8) {
        int32_t four;
        std::memcpy(&four, bytes + (c >> 1), 4);
        const __m256i idx = _mm256_and_si256(_mm256_srlv_epi32(_mm256_cvtepu8_epi32(_mm_shuffle_epi8(_mm_cvtsi32_si128(four), dup)), shifts), mask);
        const __m256 wv = _mm256_blendv_ps(_mm256_permutevar8x32_ps(lo, idx), _mm256_permutevar8x32_ps(hi, idx), _mm256_castsi256_ps(_mm256_slli_epi32(idx, 28)));
        for (int64_t j = 0; j < m; ++j) acc[j] = _mm256_fmadd_ps(wv, _mm256_loadu_ps(x + j * in + c0 + c), acc[j]);
      }
    }
    for (int64_t j = 0; j < m; ++j) {
      alignas(32) float lanes[8];
      _mm256_store_ps(lanes, acc[j]);
      y[j * w.out + r] = ((lanes[0] + lanes[1]) + (lanes[2] + lanes[3])) + ((lanes[4] + lanes[5]) + (lanes[6] + lanes[7]));
    }
  }
}

// AVX-512 VBMI version: 16 weights per step. The 8 code bytes of 16 weights are broadcast to every
// qword, one multishift puts nibble j's bits at the bottom of dword lane j, and one 16-entry permute
// (it reads only the low 4 index bits) turns them into the block's scaled codes: 2 shuffle-port ops
// per 16 weights against 4 per 8 in the AVX2 version. (A variable shift on port 0 in place of the
// multishift, with x shuffled to match, measured no faster here.) M accumulator rows × 4 independent
// chains (static indices: the accumulators stay in registers) hide the FMA latency at M = 1. Needs
// bs % 64 == 0 and a power of two, and in % bs == 0.
template <int M>
__attribute__((target("avx512f,avx512bw,avx512vbmi"))) void nf4FusedRowsAvx512(const NF4W& w, const float* x, int64_t r0, int64_t r1, float* y) {
  const __m512 codes = _mm512_loadu_ps(w.codes);
  alignas(64) uint8_t ctrlBytes[64] = {};
  for (int j = 0; j < 16; ++j) ctrlBytes[(j >> 1) * 8 + (j & 1) * 4] = static_cast<uint8_t>(8 * (j >> 1) + ((j & 1) == 0 ? 4 : 0));
  const __m512i ctrl = _mm512_load_si512(ctrlBytes);
  const int64_t in = w.in, bs = w.bs;
  const int bsShift = __builtin_ctzll(static_cast<unsigned long long>(bs));
  const int bs2Shift = __builtin_ctzll(static_cast<unsigned long long>(w.bs2));
  const bool nested = w.qAbsmax != nullptr;
  // A row's block scales first, in a loop of independent iterations: computed inside the main loop, a
  // double-quantized scale's chain of dependent loads (qAbsmax → code2, absmax2) halved the throughput.
  std::vector<float> scales(static_cast<size_t>(in >> bsShift));
  for (int64_t r = r0; r < r1; ++r) {
    __m512 acc[M][4];
    for (int j = 0; j < M; ++j)
      for (int k = 0; k < 4; ++k) acc[j][k] = _mm512_setzero_ps();
    const int64_t bRow = (r * in) >> bsShift;
    const int64_t nb = static_cast<int64_t>(scales.size());
    if (nested) {
      for (int64_t i = 0; i < nb; ++i) {
        const float p = w.code2[w.qAbsmax[bRow + i]] * w.absmax[(bRow + i) >> bs2Shift];
        scales[i] = p + w.offset;
      }
    } else {
      std::memcpy(scales.data(), w.absmax + bRow, static_cast<size_t>(nb) * sizeof(float));
    }
    const uint8_t* bytes = w.data + ((r * in) >> 1);
    for (int64_t c0 = 0, b = 0; c0 < in; c0 += bs, ++b) {
      const float scale = scales[b];
      const __m512 lut = _mm512_mul_ps(codes, _mm512_set1_ps(scale));
      for (int64_t c = c0; c < c0 + bs; c += 64, bytes += 32) {
        // Decoding streams the whole weight from DRAM once a token: prefetch ahead of the stream.
        if ((c & 127) == 0) _mm_prefetch(reinterpret_cast<const char*>(bytes) + kNF4Prefetch, _MM_HINT_T0);
#define CLINILORA_NF4_STEP(k)                                                                                         \
  {                                                                                                                   \
    int64_t eight;                                                                                                    \
    std::memcpy(&eight, bytes + 8 * (k), 8);                                                                          \
    const __m512i packed = _mm512_set1_epi64(eight);                                                                  \
    const __m512 wv = _mm512_permutexvar_ps(_mm512_multishift_epi64_epi8(ctrl, packed), lut);                          \
    for (int j = 0; j < M; ++j) acc[j][k] = _mm512_fmadd_ps(wv, _mm512_loadu_ps(x + j * in + c + 16 * (k)), acc[j][k]);   \
  }
        CLINILORA_NF4_STEP(0)
        CLINILORA_NF4_STEP(1)
        CLINILORA_NF4_STEP(2)
        CLINILORA_NF4_STEP(3)
#undef CLINILORA_NF4_STEP
      }
    }
    for (int j = 0; j < M; ++j) y[j * w.out + r] = _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(acc[j][0], acc[j][1]), _mm512_add_ps(acc[j][2], acc[j][3])));
  }
}

// The fused few-row forward on the widest instructions the CPU has (false: not applicable here).
bool nf4FusedRows(const NF4W& w, const float* x, int64_t m, int64_t r0, int64_t r1, float* y) {
  const bool pow2 = (w.bs & (w.bs - 1)) == 0 && (w.bs2 & (w.bs2 - 1)) == 0;
  if (kAvx512Vbmi && w.bs % 64 == 0 && pow2) {
    switch (m) {
      case 1: nf4FusedRowsAvx512<1>(w, x, r0, r1, y); return true;
      case 2: nf4FusedRowsAvx512<2>(w, x, r0, r1, y); return true;
      case 3: nf4FusedRowsAvx512<3>(w, x, r0, r1, y); return true;
      case 4: nf4FusedRowsAvx512<4>(w, x, r0, r1, y); return true;
      default: break;
    }
  }
  if (kAvx2) {
    nf4FusedRowsAvx2(w, x, m, r0, r1, y);
    return true;
  }
  return false;
}

bool nullableTyped(napi_env env, napi_value v, napi_typedarray_type want, const char* name, void** data, size_t* len) {
  napi_valuetype t;
  if (napi_typeof(env, v, &t) != napi_ok) return throwErr(env, std::string(name) + ": cannot read");
  if (t == napi_null || t == napi_undefined) {
    *data = nullptr;
    *len = 0;
    return true;
  }
  uint8_t* ptr = nullptr;
  if (!typedArg(env, v, want, name, &ptr, len)) return false;
  *data = ptr;
  return true;
}

// (x, data, codes, absmax, qAbsmax | null, code2 | null, offset, blockSize, blockSize2, y, m, out, in)
bool nf4Args(napi_env env, napi_callback_info info, NF4W* w, float** x, float** y, int64_t* m, size_t* lx, size_t* ly) {
  size_t argc = 13;
  napi_value argv[13];
  if (napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr) != napi_ok || argc != 13) return throwErr(env, "nf4 gemm takes 13 arguments");
  uint8_t* data;
  float *codes, *absmax;
  void *qAbsmax, *code2;
  size_t ld, lcodes, la, lq, lc2;
  double offset;
  if (!typedArg(env, argv[0], napi_float32_array, "x", x, lx) || !typedArg(env, argv[1], napi_uint8_array, "data", &data, &ld) ||
      !typedArg(env, argv[2], napi_float32_array, "codes", &codes, &lcodes) || !typedArg(env, argv[3], napi_float32_array, "absmax", &absmax, &la) ||
      !nullableTyped(env, argv[4], napi_uint8_array, "qAbsmax", &qAbsmax, &lq) || !nullableTyped(env, argv[5], napi_float32_array, "code2", &code2, &lc2))
    return false;
  if (napi_get_value_double(env, argv[6], &offset) != napi_ok) return throwErr(env, "offset must be a number");
  if (!intArg(env, argv[7], "blockSize", &w->bs, 1) || !intArg(env, argv[8], "blockSize2", &w->bs2, 1) ||
      !typedArg(env, argv[9], napi_float32_array, "y", y, ly) || !intArg(env, argv[10], "m", m, 0) || !intArg(env, argv[11], "out", &w->out, 1) ||
      !intArg(env, argv[12], "in", &w->in, 1))
    return false;
  const int64_t n = w->out * w->in, blocks = (n + w->bs - 1) / w->bs;
  if (static_cast<int64_t>(ld) != (n + 1) / 2) return throwErr(env, "data does not hold ceil(out × in / 2) bytes");
  if (lcodes != 16) return throwErr(env, "codes must hold the 16 NF4 values");
  if ((qAbsmax == nullptr) != (code2 == nullptr)) return throwErr(env, "qAbsmax and code2 go together");
  if (qAbsmax == nullptr ? static_cast<int64_t>(la) != blocks
                         : static_cast<int64_t>(lq) != blocks || static_cast<int64_t>(la) != (blocks + w->bs2 - 1) / w->bs2 || lc2 != 256)
    return throwErr(env, "absmax arrays do not match the weight's blocks");
  w->data = data;
  w->codes = codes;
  w->absmax = absmax;
  w->qAbsmax = static_cast<const uint8_t*>(qAbsmax);
  w->code2 = static_cast<const float*>(code2);
  w->offset = static_cast<float>(offset);
  return true;
}

// gemmNF4NT: y [m, out] = x [m, in] · Wᵀ. Threads take disjoint blocks of W's rows (= columns of y).
napi_value GemmNF4NT(napi_env env, napi_callback_info info) {
  NF4W w;
  float *x, *y;
  int64_t m;
  size_t lx, ly;
  if (!nf4Args(env, info, &w, &x, &y, &m, &lx, &ly)) return nullptr;
  const int64_t out = w.out, in = w.in;
  if (static_cast<int64_t>(lx) != m * in || static_cast<int64_t>(ly) != m * out) return throwErr(env, "x/y do not match m, out, in"), nullptr;
  if (m == 0) return nullptr;
  Pool* p = pool();
  const int threads = static_cast<double>(std::max<int64_t>(m, 16)) * out * in < kSplitMacs ? 1 : p->size();
  const int64_t blocks = (out + kInt8Block - 1) / kInt8Block;
  const bool fused = kAvx2 && m <= kNF4FusedRows && in % w.bs == 0 && w.bs % 8 == 0;
  p->run(threads, [&](int t) {
    const int64_t b0 = blocks * t / threads, b1 = blocks * (t + 1) / threads;
    if (fused && nf4FusedRows(w, x, m, b0 * kInt8Block, std::min(out, b1 * kInt8Block), y)) return;
    std::vector<float> scratch(static_cast<size_t>(kInt8Block * in));
    for (int64_t blk = b0; blk < b1; ++blk) {
      const int64_t r0 = blk * kInt8Block, r1 = std::min(out, r0 + kInt8Block);
      nf4Dequant(w, r0 * in, r1 * in, scratch.data());
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, static_cast<int>(m), static_cast<int>(r1 - r0), static_cast<int>(in), 1.0f, x,
                  static_cast<int>(in), scratch.data(), static_cast<int>(in), 0.0f, y + r0, static_cast<int>(out));
    }
  });
  return nullptr;
}

// gemmNF4NN: dx [m, in] = dy [m, out] · W. Threads take disjoint column ranges of W (= of dx), so each
// decodes only its part of W; narrow weights split dx's rows instead.
napi_value GemmNF4NN(napi_env env, napi_callback_info info) {
  NF4W w;
  float *dy, *dx;
  int64_t m;
  size_t ldy, ldx;
  if (!nf4Args(env, info, &w, &dy, &dx, &m, &ldy, &ldx)) return nullptr;
  const int64_t out = w.out, in = w.in;
  if (static_cast<int64_t>(ldy) != m * out || static_cast<int64_t>(ldx) != m * in) return throwErr(env, "dy/dx do not match m, out, in"), nullptr;
  if (m == 0) return nullptr;
  Pool* p = pool();
  const int threads = static_cast<double>(m) * out * in < kSplitMacs ? 1 : p->size();
  const bool byRows = in < 256 * threads;
  p->run(threads, [&](int t) {
    int64_t s, e;
    splitRange(byRows ? m : in, threads, t, byRows ? 8 : 16, &s, &e);
    if (e <= s) return;
    const int64_t c0 = byRows ? 0 : s, cols = byRows ? in : e - s, rows = byRows ? e - s : m;
    const float* dyp = byRows ? dy + s * out : dy;
    float* dxp = byRows ? dx + s * in : dx + s;
    std::vector<float> scratch(static_cast<size_t>(kInt8Block * cols));
    for (int64_t r0 = 0; r0 < out; r0 += kInt8Block) {
      const int64_t r1 = std::min(out, r0 + kInt8Block);
      for (int64_t r = r0; r < r1; ++r) nf4Dequant(w, r * in + c0, r * in + c0 + cols, scratch.data() + (r - r0) * cols);
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, static_cast<int>(rows), static_cast<int>(cols), static_cast<int>(r1 - r0),
                  1.0f, dyp + r0, static_cast<int>(out), scratch.data(), static_cast<int>(cols), r0 == 0 ? 0.0f : 1.0f, dxp,
                  static_cast<int>(in));
    }
  });
  return nullptr;
}

napi_value SetThreads(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  CHECK(napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr));
  int64_t n;
  if (argc != 1 || !intArg(env, argv[0], "threads", &n, 1)) return nullptr;
  if (n > 64) return throwErr(env, "threads must be <= 64"), nullptr;
  pool()->resize(static_cast<int>(n));
  return nullptr;
}

napi_value Info(napi_env env, napi_callback_info) {
  napi_value obj, v;
  CHECK(napi_create_object(env, &obj));
  CHECK(napi_create_int32(env, pool()->size(), &v));
  CHECK(napi_set_named_property(env, obj, "threads", v));
  CHECK(napi_create_int32(env, openblas_get_num_threads(), &v));
  CHECK(napi_set_named_property(env, obj, "blasThreads", v));
  const char* cfg = openblas_get_config();
  CHECK(napi_create_string_utf8(env, cfg != nullptr ? cfg : "", NAPI_AUTO_LENGTH, &v));
  CHECK(napi_set_named_property(env, obj, "blasConfig", v));
  const char* core = openblas_get_corename();
  CHECK(napi_create_string_utf8(env, core != nullptr ? core : "", NAPI_AUTO_LENGTH, &v));
  CHECK(napi_set_named_property(env, obj, "blasCore", v));
  const char* isa = kAvx512Vbmi ? "avx512-vbmi" : kAvx512 ? "avx512" : kAvx2 ? "avx2" : "scalar";
  CHECK(napi_create_string_utf8(env, isa, NAPI_AUTO_LENGTH, &v));
  CHECK(napi_set_named_property(env, obj, "isa", v));
  return obj;
}

napi_value Init(napi_env env, napi_value exports) {
  const napi_property_descriptor props[] = {
      {"gemm", nullptr, Gemm, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"gemmInt8NT", nullptr, GemmInt8NT, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"gemmInt8NN", nullptr, GemmInt8NN, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"gemmNF4NT", nullptr, GemmNF4NT, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"gemmNF4NN", nullptr, GemmNF4NN, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"linearCrossEntropy", nullptr, LinearCrossEntropy, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"setThreads", nullptr, SetThreads, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"info", nullptr, Info, nullptr, nullptr, nullptr, napi_default, nullptr},
  };
  if (napi_define_properties(env, exports, sizeof(props) / sizeof(props[0]), props) != napi_ok) return nullptr;
  return exports;
}

}  // namespace

NAPI_MODULE(NODE_GYP_MODULE_NAME, Init)
