/* C kernels for a CPU decode step: attention over each row's span of the cache, and sampling.
 *
 * Built by emlab.sample.native with the system C compiler and called through ctypes; no Python
 * headers are needed. OpenMP resolves to the libgomp torch has already loaded, so the kernels
 * share torch's threads instead of competing with them. Work is split by row (and key/value
 * head), each computed on its own in a fixed order, so results do not depend on the number of
 * threads or on the other rows.
 *
 * ---- Attention: one query per head and row, grouped-query heads --------------------------------
 *
 * Why a kernel: a decode step's attention is a few FLOPs per byte of cache, so its floor is one
 * read of every live key and value. Through torch it is hundreds of tiny matrix products per
 * layer (one per row and key/value head, [T, D] x [D, heads per group]), a copy of the strided
 * cache window, and a softmax over a strided axis: ~7x the time of reading the cache at a
 * 128-row step. Here each (row, key/value head) reads its keys once, keeps the scores of its
 * query heads in fp32, and reads its values once.
 *
 * Layouts (strides in elements; the head dimension is contiguous):
 *   q   [B, H, D]        out [B, H, D]
 *   k,v [B, KV, T, D]    row b attends to columns [starts[b], T)
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define MAX_D 256
#define MAX_REP 16

static inline __attribute__((always_inline)) void load_row(const void *base, int64_t off,
                                                           const int bf16, float *dst,
                                                           const int64_t dim) {
    if (bf16) {
        const uint16_t *h = (const uint16_t *)base + off;
        for (int64_t d = 0; d < dim; d++) {
            uint32_t u = (uint32_t)h[d] << 16;
            memcpy(dst + d, &u, sizeof u);
        }
    } else {
        memcpy(dst, (const float *)base + off, sizeof(float) * (size_t)dim);
    }
}

static inline __attribute__((always_inline)) void store_row(void *base, int64_t off,
                                                            const int bf16, const float *src,
                                                            const int64_t dim) {
    if (!bf16) {
        memcpy((float *)base + off, src, sizeof(float) * (size_t)dim);
        return;
    }
    uint16_t *h = (uint16_t *)base + off;
    for (int64_t d = 0; d < dim; d++) {
        uint32_t u;
        memcpy(&u, src + d, sizeof u);
        /* Round to nearest even, as torch does; a NaN stays a NaN. */
        uint32_t rounded = (u + 0x7fffu + ((u >> 16) & 1u)) >> 16;
        h[d] = (uint16_t)((u & 0x7fffffffu) > 0x7f800000u ? (u >> 16) | 0x40u : rounded);
    }
}

/* e^x for x <= 0 (scores minus their maximum): Cody-Waite reduction and Cephes' polynomial,
 * ~1 ulp. Written branch-free so the compiler vectorises the loop that calls it (a scalar expf
 * per score cost more than the rest of the kernel). */
static inline float exp_nonpositive(float x) {
    x = x < -87.0f ? -87.0f : x; /* e^-87 is still a normal float; next to the max's 1 it is 0 */
    float n = __builtin_floorf(x * 1.44269504088896341f + 0.5f);
    float r = x - n * 0.693359375f + n * 2.12194440e-4f;
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    p = p * r * r + r + 1.0f;
    uint32_t bits = (uint32_t)((int32_t)n + 127) << 23;
    float scale;
    memcpy(&scale, &bits, sizeof scale);
    return p * scale;
}

/* Each of `rep` rows of n scores becomes e^(score - max); inv gets 1 / their sum. */
static void softmax_rows(float *scores, int64_t n, int64_t rep, float *inv) {
    for (int64_t r = 0; r < rep; r++) {
        float *sr = scores + r * n, mx = sr[0], sum = 0.0f;
        for (int64_t t = 1; t < n; t++) mx = sr[t] > mx ? sr[t] : mx;
        for (int64_t t = 0; t < n; t++) sr[t] = exp_nonpositive(sr[t] - mx);
        for (int64_t t = 0; t < n; t++) sum += sr[t];
        inv[r] = 1.0f / sum;
    }
}

/* One (row, key/value head): its query heads against columns [s0, s0 + n). Inlined with dim
 * and bf16 as constants, so the loops over the head dimension unroll and vectorise. */
static inline __attribute__((always_inline)) void attend_pair(
    const void *q, int64_t q_sh, const void *k, int64_t k_st, const void *v, int64_t v_st,
    void *out, int64_t o_sh, int64_t n, int64_t rep, float scale, float *scores, const int bf16,
    const int64_t dim) {
    float qf[MAX_REP * MAX_D], acc[MAX_REP * MAX_D], xf[MAX_D], inv[MAX_REP];
    for (int64_t r = 0; r < rep; r++) {
        load_row(q, r * q_sh, bf16, xf, dim);
        for (int64_t d = 0; d < dim; d++) qf[r * dim + d] = xf[d] * scale;
    }
    for (int64_t t = 0; t < n; t++) {
        load_row(k, t * k_st, bf16, xf, dim);
        for (int64_t r = 0; r < rep; r++) {
            float s = 0.0f;
            for (int64_t d = 0; d < dim; d++) s += qf[r * dim + d] * xf[d];
            scores[r * n + t] = s;
        }
    }
    softmax_rows(scores, n, rep, inv);
    for (int64_t i = 0; i < rep * dim; i++) acc[i] = 0.0f;
    for (int64_t t = 0; t < n; t++) {
        load_row(v, t * v_st, bf16, xf, dim);
        for (int64_t r = 0; r < rep; r++) {
            float p = scores[r * n + t];
            for (int64_t d = 0; d < dim; d++) acc[r * dim + d] += p * xf[d];
        }
    }
    for (int64_t r = 0; r < rep; r++) {
        for (int64_t d = 0; d < dim; d++) xf[d] = acc[r * dim + d] * inv[r];
        store_row(out, r * o_sh, bf16, xf, dim);
    }
}

#if defined(__AVX512F__) && defined(__AVX512BF16__)
#include <immintrin.h>
#define EMLAB_AVX512_BF16 1

/* The same computation for bf16 heads of 64 or 128 with AVX-512 BF16 (Zen 4, Sapphire Rapids):
 * each score is two or four vdpbf16ps (products exact in fp32, fp32 sums), and the values are
 * accumulated for up to `rb` query heads at once in registers, so every value row is loaded and
 * widened once per block of heads. The plain loops above kept the accumulators in memory and
 * spent ~3x as long on the values as on the keys. */
static inline __m512 widen16(const uint16_t *p) {
    __m256i h = _mm256_loadu_si256((const __m256i *)p);
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
}

static inline __attribute__((always_inline)) void values_avx512(
    const uint16_t *v, int64_t v_st, const float *p, int64_t n, const float *inv, uint16_t *out,
    int64_t o_sh, const int rb, const int64_t dim) {
    __m512 a[4][MAX_D / 16];
    for (int r = 0; r < rb; r++)
        for (int c = 0; c < dim / 16; c++) a[r][c] = _mm512_setzero_ps();
    for (int64_t t = 0; t < n; t++, v += v_st) {
        __m512 x[MAX_D / 16];
        for (int c = 0; c < dim / 16; c++) x[c] = widen16(v + 16 * c);
        for (int r = 0; r < rb; r++) {
            __m512 pr = _mm512_set1_ps(p[r * n + t]);
            for (int c = 0; c < dim / 16; c++) a[r][c] = _mm512_fmadd_ps(pr, x[c], a[r][c]);
        }
    }
    for (int r = 0; r < rb; r++) {
        __m512 s = _mm512_set1_ps(inv[r]);
        for (int c = 0; c < dim / 16; c++) {
            __m256bh h = _mm512_cvtneps_pbh(_mm512_mul_ps(a[r][c], s)); /* nearest even */
            _mm256_storeu_si256((__m256i *)(out + r * o_sh + 16 * c), (__m256i)h);
        }
    }
}

static inline __attribute__((always_inline)) void attend_pair_avx512(
    const uint16_t *q, int64_t q_sh, const uint16_t *k, int64_t k_st, const uint16_t *v,
    int64_t v_st, uint16_t *out, int64_t o_sh, int64_t n, int64_t rep, float scale,
    float *scores, const int64_t dim) {
    __m512bh qv[MAX_REP][MAX_D / 32];
    float inv[MAX_REP];
    for (int64_t r = 0; r < rep; r++)
        for (int c = 0; c < dim / 32; c++)
            qv[r][c] = (__m512bh)_mm512_loadu_si512(q + r * q_sh + 32 * c);
    for (int64_t t = 0; t < n; t++, k += k_st) {
        __m512bh x[MAX_D / 32];
        for (int c = 0; c < dim / 32; c++) x[c] = (__m512bh)_mm512_loadu_si512(k + 32 * c);
        for (int64_t r = 0; r < rep; r++) {
            __m512 acc = _mm512_setzero_ps();
            for (int c = 0; c < dim / 32; c++) acc = _mm512_dpbf16_ps(acc, x[c], qv[r][c]);
            scores[r * n + t] = _mm512_reduce_add_ps(acc) * scale;
        }
    }
    softmax_rows(scores, n, rep, inv);
    /* Blocks of heads whose accumulators fit in the 32 vector registers. */
    const int block = dim <= 64 ? 4 : 2;
    for (int64_t r0 = 0; r0 < rep; r0 += block) {
        const float *p = scores + r0 * n;
        uint16_t *o = out + r0 * o_sh;
        switch (rep - r0 < block ? rep - r0 : block) {
        case 1: values_avx512(v, v_st, p, n, inv + r0, o, o_sh, 1, dim); break;
        case 2: values_avx512(v, v_st, p, n, inv + r0, o, o_sh, 2, dim); break;
        case 3: values_avx512(v, v_st, p, n, inv + r0, o, o_sh, 3, dim); break;
        default: values_avx512(v, v_st, p, n, inv + r0, o, o_sh, 4, dim); break;
        }
    }
}
#endif

/* Rows [0, rows) over `threads` OpenMP threads. Returns 0, or 1 for shapes outside the kernel's
 * limits, 2 when out of memory. */
int emlab_decode_attention(int bf16, const void *q, int64_t q_sb, int64_t q_sh, const void *k,
                           int64_t k_sb, int64_t k_sg, int64_t k_st, const void *v, int64_t v_sb,
                           int64_t v_sg, int64_t v_st, const int64_t *starts, void *out,
                           int64_t o_sb, int64_t o_sh, int64_t rows, int64_t heads,
                           int64_t kv_heads, int64_t cols, int64_t dim, float scale, int threads) {
    int64_t rep = heads / kv_heads;
    if (dim > MAX_D || rep > MAX_REP || rep * kv_heads != heads || cols < 1) return 1;
    int failed = 0;
    const int64_t es = bf16 ? 2 : 4; /* element size: the offsets below are in bytes */
#pragma omp parallel num_threads(threads) reduction(| : failed)
    {
        float *scores = malloc(sizeof(float) * (size_t)(rep * cols));
        failed = scores == NULL;
#pragma omp for schedule(static)
        for (int64_t i = 0; i < rows * kv_heads; i++) {
            if (!scores) continue;
            int64_t b = i / kv_heads, g = i % kv_heads, s0 = starts[b];
            s0 = s0 < 0 ? 0 : (s0 > cols - 1 ? cols - 1 : s0);
            const char *qp = (const char *)q + es * (b * q_sb + g * rep * q_sh);
            const char *kp = (const char *)k + es * (b * k_sb + g * k_sg + s0 * k_st);
            const char *vp = (const char *)v + es * (b * v_sb + g * v_sg + s0 * v_st);
            char *op = (char *)out + es * (b * o_sb + g * rep * o_sh);
#define PAIR(BF16, DIM)                                                                        \
    attend_pair(qp, q_sh, kp, k_st, vp, v_st, op, o_sh, cols - s0, rep, scale, scores, BF16, DIM)
            /* The common head sizes get their own unrolled copies; any other size runs the same
             * code with a run-time length. */
#ifdef EMLAB_AVX512_BF16
            if (bf16 && dim == 64)
                attend_pair_avx512((const uint16_t *)qp, q_sh, (const uint16_t *)kp, k_st,
                                   (const uint16_t *)vp, v_st, (uint16_t *)op, o_sh, cols - s0,
                                   rep, scale, scores, 64);
            else if (bf16 && dim == 128)
                attend_pair_avx512((const uint16_t *)qp, q_sh, (const uint16_t *)kp, k_st,
                                   (const uint16_t *)vp, v_st, (uint16_t *)op, o_sh, cols - s0,
                                   rep, scale, scores, 128);
            else
#endif
            if (bf16 && dim == 64) PAIR(1, 64);
            else if (bf16 && dim == 128) PAIR(1, 128);
            else if (bf16) PAIR(1, dim);
            else if (dim == 64) PAIR(0, 64);
            else if (dim == 128) PAIR(0, 128);
            else PAIR(0, dim);
#undef PAIR
        }
        free(scores);
    }
    return failed ? 2 : 0;
}

/* ---- Sampling: one inverse-CDF draw per row from softmax(logits / temperature) ---------------
 *
 * Why: at 128 rows x 49k tokens, converting the logits to fp32, a softmax and torch's two-level
 * search took ~7% of a decode step. Here each row is read three times in place (max, exp and
 * block sums, then one block), in bf16 or fp32. Masses are e^(x/T - max) in fp32, cumulated in
 * double; the token drawn is the first whose cumulative mass exceeds u x total, and never one
 * of zero mass (u < 1, and -inf logits have mass 0). Rows are independent, so a row's token does
 * not depend on the others or on the number of threads. */

#define SAMPLE_BLOCK 512

static inline __attribute__((always_inline)) float logit_at(const void *row, int64_t i,
                                                            const int bf16) {
    if (bf16) {
        uint32_t u = (uint32_t)((const uint16_t *)row)[i] << 16;
        float f;
        memcpy(&f, &u, sizeof f);
        return f;
    }
    return ((const float *)row)[i];
}

static inline __attribute__((always_inline)) int64_t draw_row(const void *row, int64_t vocab,
                                                              float inv_t, double u, float *mass,
                                                              const int bf16) {
    float mx = -__builtin_inff();
    for (int64_t i = 0; i < vocab; i++) {
        float x = logit_at(row, i, bf16) * inv_t;
        mx = x > mx ? x : mx;
    }
    if (!(mx > -__builtin_inff())) return 0; /* every logit -inf: no distribution to draw from */
    int64_t nb = (vocab + SAMPLE_BLOCK - 1) / SAMPLE_BLOCK;
    double total = 0.0;
    for (int64_t b = 0; b < nb; b++) {
        int64_t lo = b * SAMPLE_BLOCK, hi = lo + SAMPLE_BLOCK < vocab ? lo + SAMPLE_BLOCK : vocab;
        float s = 0.0f;
        for (int64_t i = lo; i < hi; i++) {
            float x = logit_at(row, i, bf16) * inv_t - mx;
            float e = x < -87.0f ? 0.0f : exp_nonpositive(x); /* below: less than 2^-125 */
            mass[i] = e;
            s += e;
        }
        mass[vocab + b] = s;
        total += s;
    }
    double target = u * total, before = 0.0;
    int64_t b = 0;
    while (b < nb - 1 && before + mass[vocab + b] <= target) before += mass[vocab + b++];
    int64_t lo = b * SAMPLE_BLOCK, hi = lo + SAMPLE_BLOCK < vocab ? lo + SAMPLE_BLOCK : vocab;
    int64_t last = -1; /* the block's last token with mass: where rounding would run past it */
    double run = before;
    for (int64_t i = lo; i < hi; i++) {
        if (mass[i] <= 0.0f) continue;
        last = i;
        run += mass[i];
        if (run > target) return i;
    }
    if (last >= 0) return last;
    for (int64_t i = lo - 1; i >= 0; i--) /* an all-zero block (rounding at its edge) */
        if (mass[i] > 0.0f) return i;
    return 0;
}

/* rows x vocab logits (row stride in elements); inv_temp and u per row; tokens out. Returns 0,
 * or 2 when out of memory. */
int emlab_sample_rows(int bf16, const void *logits, int64_t row_stride, int64_t rows,
                      int64_t vocab, const float *inv_temp, const double *u, int64_t *out,
                      int threads) {
    int failed = 0;
    const int64_t es = bf16 ? 2 : 4;
#pragma omp parallel num_threads(threads) reduction(| : failed)
    {
        float *mass = malloc(sizeof(float) * (size_t)(vocab + vocab / SAMPLE_BLOCK + 1));
        failed = mass == NULL;
#pragma omp for schedule(static)
        for (int64_t r = 0; r < rows; r++) {
            if (!mass) continue;
            const void *row = (const char *)logits + es * r * row_stride;
            out[r] = bf16 ? draw_row(row, vocab, inv_temp[r], u[r], mass, 1)
                          : draw_row(row, vocab, inv_temp[r], u[r], mass, 0);
        }
        free(mass);
    }
    return failed ? 2 : 0;
}
