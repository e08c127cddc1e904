/* test-sampling — the sampler against direct computations on hand-made logits. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lfm2.h"

#include "lfm2-test.h"

static struct lfm2_sampler_params plain(void)
{
    struct lfm2_sampler_params p = lfm2_sampler_default_params();
    p.temperature = 1.0f;
    p.top_k = 0;
    p.top_p = 1.0f;
    p.min_p = 0.0f;
    p.repeat_penalty = 1.0f;
    p.seed = 1234;
    return p;
}

int main(void)
{
    char path[1024];
    const char *data = getenv("LFM2_TEST_DATA");
    if (!data)
        return 1;
    snprintf(path, sizeof path, "%s/text/tiny-f32/lfm2-tiny-f32.gguf", data);
    lfm2_model *m = lfm2_model_load(path, lfm2_model_default_params());
    if (!m) {
        fprintf(stderr, "%s\n", lfm2_last_error());
        return 1;
    }
    const int V = lfm2_model_n_vocab(m);
    float *lg = malloc((size_t)V * sizeof(float));
    /* logits: token i has log-weight -i/50, token 77 is the best by a margin */
    for (int i = 0; i < V; i++)
        lg[i] = -(float)i / 50.0f;
    lg[77] = 3.0f;

    /* greedy */
    struct lfm2_sampler_params p = plain();
    p.temperature = 0.0f;
    lfm2_sampler *s = lfm2_sampler_new(m, p);
    CHECK(lfm2_sampler_sample(s, lg) == 77, "greedy picks the argmax");
    lfm2_sampler_free(s);

    /* top_k = 1 is greedy at any temperature */
    p = plain();
    p.top_k = 1;
    p.temperature = 5.0f;
    s = lfm2_sampler_new(m, p);
    for (int i = 0; i < 100; i++)
        CHECK(lfm2_sampler_sample(s, lg) == 77, "top_k 1");
    lfm2_sampler_free(s);

    /* same seed → same sequence; frequencies follow softmax(logits / T) */
    p = plain();
    p.temperature = 0.7f;
    lfm2_sampler *a = lfm2_sampler_new(m, p), *b = lfm2_sampler_new(m, p);
    int *count = calloc((size_t)V, sizeof(int));
    const int N = 20000;
    for (int i = 0; i < N; i++) {
        lfm2_token x = lfm2_sampler_sample(a, lg), y = lfm2_sampler_sample(b, lg);
        CHECK(x == y, "same seed, different draw at %d", i);
        CHECK(x >= 0 && x < V, "draw out of range");
        count[x]++;
    }
    double z = 0;
    for (int i = 0; i < V; i++)
        z += exp(lg[i] / 0.7);
    for (int i = 0; i < 5; i++) {
        const int t = i == 0 ? 77 : i - 1;
        double pexp = exp(lg[t] / 0.7) / z, sd = sqrt(N * pexp * (1 - pexp));
        CHECK(fabs(count[t] - N * pexp) < 5 * sd + 1, "token %d drawn %d times, expected %.1f", t,
              count[t], N * pexp);
    }
    lfm2_sampler_free(a);
    lfm2_sampler_free(b);

    /* min_p: nothing below min_p * p_max is ever drawn */
    p = plain();
    p.min_p = 0.5f;
    s = lfm2_sampler_new(m, p);
    for (int i = 0; i < 2000; i++) {
        lfm2_token t = lfm2_sampler_sample(s, lg);
        CHECK(lg[t] >= lg[77] + logf(0.5f) - 1e-6f, "min_p let token %d through", t);
    }
    lfm2_sampler_free(s);

    /* top_p: the smallest prefix reaching top_p (at temperature 1) */
    for (int i = 0; i < V; i++)
        lg[i] = -10.0f;
    lg[5] = 2.0f, lg[9] = 1.5f, lg[3] = 1.0f; /* p ≈ .50, .30, .18 of the head */
    p = plain();
    p.top_p = 0.6f;
    s = lfm2_sampler_new(m, p);
    memset(count, 0, (size_t)V * sizeof(int));
    for (int i = 0; i < 4000; i++)
        count[lfm2_sampler_sample(s, lg)]++;
    CHECK(count[5] > 0 && count[9] > 0 && count[5] + count[9] == 4000,
          "top_p 0.6 keeps exactly tokens 5 and 9 (got %d %d %d)", count[5], count[9], count[3]);
    lfm2_sampler_free(s);

    /* repetition penalty turns a seen token's lead into a loss */
    for (int i = 0; i < V; i++)
        lg[i] = 0.0f;
    lg[10] = 1.0f, lg[11] = 0.9f;
    p = plain();
    p.temperature = 0.0f;
    p.repeat_penalty = 1.2f;
    s = lfm2_sampler_new(m, p);
    CHECK(lfm2_sampler_sample(s, lg) == 10, "before penalty");
    lfm2_sampler_accept(s, 10);
    CHECK(lfm2_sampler_sample(s, lg) == 11, "penalty 1.2 makes 1.0/1.2 < 0.9");
    lfm2_sampler_reset(s);
    CHECK(lfm2_sampler_sample(s, lg) == 10, "reset clears the history");
    lfm2_sampler_free(s);

    /* logit bias: -inf never picks the token (greedy and sampled), a finite bias shifts it,
     * the bias outlives reset, and tokens outside the vocabulary are refused */
    p = plain();
    p.temperature = 0.0f;
    s = lfm2_sampler_new(m, p);
    CHECK(lfm2_sampler_set_logit_bias(s, 10, -INFINITY) == 0, "bias accepted");
    CHECK(lfm2_sampler_sample(s, lg) == 11, "banned argmax skipped");
    CHECK(lfm2_sampler_set_logit_bias(s, 12, 0.95f) == 0, "second bias");
    CHECK(lfm2_sampler_sample(s, lg) == 12, "bias 0.95 lifts token 12 above 0.9");
    lfm2_sampler_reset(s);
    CHECK(lfm2_sampler_sample(s, lg) == 12, "bias kept across reset");
    CHECK(lfm2_sampler_set_logit_bias(s, V, 1.0f) == -1 && lfm2_sampler_set_logit_bias(s, -1, 1.0f) == -1,
          "out-of-vocabulary bias refused");
    lfm2_sampler_free(s);
    p = plain();
    p.temperature = 2.0f;
    s = lfm2_sampler_new(m, p);
    lfm2_sampler_set_logit_bias(s, 10, -INFINITY);
    for (int i = 0; i < 3000; i++)
        CHECK(lfm2_sampler_sample(s, lg) != 10, "banned token drawn at temperature 2");
    lfm2_sampler_free(s);

    free(count);
    free(lg);
    lfm2_model_free(m);
    return lfm2_test_failures ? 1 : 0;
}
