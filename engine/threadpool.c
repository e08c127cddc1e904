/* threadpool.c — the persistent thread pool every op runs on.
 *
 * Workers are created once. A job is published by bumping a generation counter; workers spin
 * on it for a short while (a decode step issues dozens of jobs a few microseconds apart, and a
 * futex wake-up costs more than that), then sleep on the counter with a futex. The caller is
 * thread 0 and runs its share before waiting for the others, so a job costs no thread
 * creation, no allocation and no lock.
 */
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#ifdef __linux__
#include <linux/futex.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#endif

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define cpu_relax() _mm_pause()
#else
#define cpu_relax() ((void)0)
#endif

#include "internal.h"
#include "kernels/kernels.h"
#include "lfm2-ops.h"

/* How long an idle worker spins before sleeping. Long enough to bridge the gap between the
 * ops of one forward pass, short enough not to burn a core while the application is idle. */
#define SPIN_NS 200000
#define MAX_THREADS 256

struct worker {
    lfm2_pool *pool;
    int ith;
    pthread_t thread;
    _Atomic int tid;               /* kernel thread id (Linux), 0 until the worker runs */
};

/* The nice value the calling thread asked for with lfm2_thread_set_nice (INT_MIN: none);
 * lfm2_pool_run passes it on to the pool's workers. */
static _Thread_local int thread_nice = INT_MIN;

struct lfm2_pool {
    int n;
    struct worker *workers;        /* n - 1 workers (thread 0 is the caller) */

    /* job publication: written by the caller, read by workers after they see `gen` move */
    lfm2_task_fn fn;
    void *arg;
    bool stop;

    _Alignas(64) _Atomic uint32_t gen;   /* futex word: bumped once per job */
    _Atomic int n_sleeping;
    _Alignas(64) _Atomic int n_done;     /* workers finished with the current job */
    _Alignas(64) _Atomic int bar_count;  /* in-job barrier */
    _Atomic uint32_t bar_gen;

    _Alignas(64) void *scratch;
    size_t scratch_size;

    int workers_nice;              /* what the workers were given (INT_MIN: untouched) */
};

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void futex_wait(_Atomic uint32_t *addr, uint32_t expected)
{
#ifdef __linux__
    syscall(SYS_futex, (uint32_t *)addr, FUTEX_WAIT_PRIVATE, expected, NULL, NULL, 0);
#else
    (void)addr; (void)expected;
    struct timespec ts = { 0, 50000 };
    nanosleep(&ts, NULL);
#endif
}

static void futex_wake_all(_Atomic uint32_t *addr)
{
#ifdef __linux__
    syscall(SYS_futex, (uint32_t *)addr, FUTEX_WAKE_PRIVATE, INT_MAX, NULL, NULL, 0);
#else
    (void)addr;
#endif
}

/* Waits until pool->gen differs from `seen`; returns the new value. */
static uint32_t wait_job(lfm2_pool *pool, uint32_t seen)
{
    uint32_t g;
    uint64_t t0 = 0;
    for (unsigned i = 0;; i++) {
        g = atomic_load_explicit(&pool->gen, memory_order_acquire);
        if (g != seen)
            return g;
        cpu_relax();
        if ((i & 127) == 127) {
            const uint64_t t = now_ns();
            if (!t0)
                t0 = t;
            else if (t - t0 > SPIN_NS)
                break;
            sched_yield();   /* free the core if another thread wants it (more threads than cores) */
        }
    }
    /* Announce the sleep before re-checking gen; the caller bumps gen before reading
     * n_sleeping (both sequentially consistent), so one of us sees the other. */
    atomic_fetch_add(&pool->n_sleeping, 1);
    while ((g = atomic_load(&pool->gen)) == seen)
        futex_wait(&pool->gen, seen);
    atomic_fetch_sub(&pool->n_sleeping, 1);
    return g;
}

static void *worker_main(void *p)
{
    struct worker *w = p;
    lfm2_pool *pool = w->pool;
    uint32_t seen = 0;
#ifdef __linux__
    atomic_store(&w->tid, (int)syscall(SYS_gettid));
#endif
    for (;;) {
        seen = wait_job(pool, seen);
        if (pool->stop)
            break;
        pool->fn(pool->arg, w->ith, pool->n);
        atomic_fetch_add_explicit(&pool->n_done, 1, memory_order_release);
    }
    return NULL;
}

lfm2_pool *lfm2_pool_new(int n_threads)
{
    if (n_threads <= 0) {
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        n_threads = n > 0 ? (int)n : 1;
    }
    if (n_threads > MAX_THREADS)
        n_threads = MAX_THREADS;
    lfm2_pool *pool = lfm2_alloc_aligned(sizeof *pool);
    if (!pool)
        return NULL;
    memset(pool, 0, sizeof *pool);
    pool->n = n_threads;
    pool->workers_nice = INT_MIN;
    if (n_threads > 1) {
        pool->workers = calloc((size_t)n_threads - 1, sizeof *pool->workers);
        if (!pool->workers) {
            lfm2_free_aligned(pool);
            lfm2_set_error("out of memory creating a %d-thread pool", n_threads);
            return NULL;
        }
    }
    for (int i = 1; i < n_threads; i++) {
        struct worker *w = &pool->workers[i - 1];
        w->pool = pool;
        w->ith = i;
        int rc = pthread_create(&w->thread, NULL, worker_main, w);
        if (rc != 0) {
            lfm2_set_error("cannot create worker thread %d of %d: %s", i, n_threads, strerror(rc));
            pool->n = i;   /* the workers created so far */
            lfm2_pool_free(pool);
            return NULL;
        }
    }
    return pool;
}

void lfm2_pool_free(lfm2_pool *pool)
{
    if (!pool)
        return;
    if (pool->n > 1) {
        pool->stop = true;
        atomic_fetch_add(&pool->gen, 1);
        futex_wake_all(&pool->gen);
        for (int i = 1; i < pool->n; i++)
            pthread_join(pool->workers[i - 1].thread, NULL);
    }
    free(pool->workers);
    lfm2_free_aligned(pool->scratch);
    lfm2_free_aligned(pool);
}

int lfm2_pool_n_threads(const lfm2_pool *pool)
{
    return pool ? pool->n : 1;
}

int lfm2_thread_set_nice(int nice)
{
#ifdef __linux__
    if (setpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid), nice) != 0)
        return lfm2_set_error("cannot set the thread's nice value to %d: %s", nice,
                              strerror(errno));
#endif
    thread_nice = nice;
    return 0;
}

/* The workers take the caller's nice value (a kernel thread id is a valid PRIO_PROCESS
 * target on Linux). A failure (lowering it without privilege) leaves them as they are. */
static void follow_caller_nice(lfm2_pool *pool)
{
#ifdef __linux__
    for (int i = 1; i < pool->n; i++) {
        struct worker *w = &pool->workers[i - 1];
        int tid;
        while (!(tid = atomic_load(&w->tid)))
            sched_yield();   /* created but not yet running: a moment */
        setpriority(PRIO_PROCESS, (id_t)tid, thread_nice);
    }
#endif
    pool->workers_nice = thread_nice;
}

void lfm2_pool_run(lfm2_pool *pool, lfm2_task_fn fn, void *arg)
{
    if (!pool || pool->n == 1) {
        fn(arg, 0, 1);
        return;
    }
    if (thread_nice != INT_MIN && thread_nice != pool->workers_nice)
        follow_caller_nice(pool);
    pool->fn = fn;
    pool->arg = arg;
    atomic_store_explicit(&pool->n_done, 0, memory_order_relaxed);
    atomic_fetch_add(&pool->gen, 1);   /* seq_cst: publishes fn/arg, pairs with n_sleeping */
    if (atomic_load(&pool->n_sleeping) > 0)
        futex_wake_all(&pool->gen);

    fn(arg, 0, pool->n);

    const int others = pool->n - 1;
    for (unsigned i = 0; atomic_load_explicit(&pool->n_done, memory_order_acquire) < others; i++) {
        cpu_relax();
        if ((i & 127) == 127)
            sched_yield();   /* a worker may be waiting for this core (more threads than cores) */
    }
}

void lfm2_pool_barrier(lfm2_pool *pool)
{
    if (!pool || pool->n == 1)
        return;
    const uint32_t g = atomic_load_explicit(&pool->bar_gen, memory_order_acquire);
    if (atomic_fetch_add_explicit(&pool->bar_count, 1, memory_order_acq_rel) == pool->n - 1) {
        atomic_store_explicit(&pool->bar_count, 0, memory_order_relaxed);
        atomic_fetch_add_explicit(&pool->bar_gen, 1, memory_order_release);
        return;
    }
    for (unsigned i = 0; atomic_load_explicit(&pool->bar_gen, memory_order_acquire) == g; i++) {
        cpu_relax();
        if ((i & 127) == 127)
            sched_yield();
    }
}

void *lfm2_pool_scratch(lfm2_pool *pool, size_t size)
{
    if (size <= pool->scratch_size)
        return pool->scratch;
    size_t cap = (size + 4095) & ~(size_t)4095;
    void *p = lfm2_alloc_aligned(cap);
    if (!p)
        return NULL;
    lfm2_free_aligned(pool->scratch);
    pool->scratch = p;
    pool->scratch_size = cap;
    return p;
}
