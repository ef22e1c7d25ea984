/* AVX-512 with intrinsics: zmm registers (all 32 in use by the loop's
 * unrolling), opmask registers k1-k7 steering masked adds and blends. */
#include <immintrin.h>
#include <vsw_guest.h>

int main(void)
{
    __m512i v[8];
    for (int j = 0; j < 8; j++)
        v[j] = _mm512_set1_epi64(0x1111111111111111ll * (j + 1));
    __m512i k = _mm512_set_epi64(1, 2, 3, 5, 7, 11, 13, 17);
    __mmask8 m = 0xa5;
    for (int i = 0; i < 200000; i++) {
        for (int j = 0; j < 8; j++) {
            v[j] = _mm512_mask_add_epi64(v[j], m, v[j], k);
            v[j] = _mm512_xor_si512(v[j], _mm512_rol_epi64(v[(j + 1) & 7], 13));
        }
        __mmask8 c = _mm512_cmpgt_epu64_mask(v[0], v[4]);
        m = (__mmask8)(m ^ c ^ (uint8_t)(m << 1));
        k = _mm512_mask_blend_epi64(c, k, _mm512_add_epi64(k, _mm512_set1_epi64(1)));
    }
    uint64_t out[8], h = 0;
    for (int j = 0; j < 8; j++) {
        _mm512_storeu_si512(out, v[j]);
        for (int l = 0; l < 8; l++)
            h = (h ^ out[l]) * 0x100000001b3ull;
    }
    vsw_printf("avx512 %016llx mask %02x\n", (unsigned long long)h, m);
    return 0;
}
