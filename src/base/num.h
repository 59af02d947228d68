/* num.h — scalar number formats: IEEE half and bfloat16 <-> f32, and
 * overflow-checked size arithmetic used by every parser. */
#ifndef HN_NUM_H
#define HN_NUM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

float hn_f16_to_f32(uint16_t h);
uint16_t hn_f32_to_f16(float f);
float hn_bf16_to_f32(uint16_t b);
uint16_t hn_f32_to_bf16(float f); /* round to nearest even */

void hn_f16_to_f32_n(const uint16_t *src, float *dst, size_t n);
void hn_bf16_to_f32_n(const uint16_t *src, float *dst, size_t n);

/* a*b and a+b into *out; false on size_t overflow. */
bool hn_mul_ok(size_t a, size_t b, size_t *out);
bool hn_add_ok(size_t a, size_t b, size_t *out);

#endif
