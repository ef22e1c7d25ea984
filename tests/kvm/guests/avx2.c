/* AVX2 with intrinsics: 256-bit integer and double lanes, shuffles, FMA-free. */
#include <immintrin.h>
#include <vsw_guest.h>

int main(void)
{
    __m256i acc = _mm256_set1_epi64x(0x0123456789abcdefll), k = _mm256_set_epi64x(3, 5, 7, 11);
    __m256d d = _mm256_set1_pd(1.0), step = _mm256_set_pd(1e-3, 2e-3, 3e-3, 4e-3);
    for (int i = 0; i < 300000; i++) {
        acc = _mm256_xor_si256(_mm256_add_epi64(acc, k), _mm256_slli_epi64(acc, 7));
        acc = _mm256_permute4x64_epi64(acc, 0x39);
        d = _mm256_add_pd(_mm256_mul_pd(d, _mm256_set1_pd(0.999999)), step);
    }
    uint64_t a[4];
    double b[4];
    _mm256_storeu_si256((__m256i *)a, acc);
    _mm256_storeu_pd(b, d);
    union { double v; uint64_t u; } u0 = {b[0]}, u3 = {b[3]};
    vsw_printf("avx2 %016llx %016llx %016llx %016llx | %016llx %016llx\n", (unsigned long long)a[0],
               (unsigned long long)a[1], (unsigned long long)a[2], (unsigned long long)a[3],
               (unsigned long long)u0.u, (unsigned long long)u3.u);
    return 0;
}
