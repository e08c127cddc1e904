/* gstlfm2model.c — the shared model registry (see gstlfm2model.h). */
#include "gstlfm2model.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

GST_DEBUG_CATEGORY_STATIC (lfm2_registry_debug);
#define GST_CAT_DEFAULT lfm2_registry_debug

struct _GstLfm2Shared {
  gchar *key;
  gchar *kind;
  gchar *path;                  /* canonical */
  gpointer object;
  GstLfm2FreeFunc free_func;
  guint users;                  /* holders, including threads waiting for the load */
  gboolean loading;
  GError *load_error;           /* set when the load failed (entry already unlisted) */
};

static GMutex registry_lock;
static GCond registry_cond;
static GHashTable *registry;    /* key → GstLfm2Shared*, created on first use */
static guint registry_loads;

static void
ensure_init (void)
{
  static gsize once = 0;

  if (g_once_init_enter (&once)) {
    GST_DEBUG_CATEGORY_INIT (lfm2_registry_debug, "lfm2registry", 0,
        "LFM2 shared model registry");
    g_once_init_leave (&once, 1);
  }
}

static void
entry_free (GstLfm2Shared * e)
{
  if (e->object && e->free_func)
    e->free_func (e->object);
  g_clear_error (&e->load_error);
  g_free (e->key);
  g_free (e->kind);
  g_free (e->path);
  g_free (e);
}

/* Resolves `path` and identifies the file; the error names the path as the user gave it. */
static gchar *
canonical_key (const gchar * kind, const gchar * path, gchar ** canon_out, GError ** error)
{
  char resolved[PATH_MAX];
  struct stat st;

  if (path == NULL || path[0] == '\0') {
    g_set_error (error, GST_RESOURCE_ERROR, GST_RESOURCE_ERROR_NOT_FOUND,
        "No model file given (set the model property)");
    return NULL;
  }
  if (realpath (path, resolved) == NULL || stat (resolved, &st) != 0) {
    int e = errno;
    g_set_error (error, GST_RESOURCE_ERROR,
        e == ENOENT || e == ENOTDIR ? GST_RESOURCE_ERROR_NOT_FOUND :
        GST_RESOURCE_ERROR_OPEN_READ, "Cannot open model file \"%s\": %s", path,
        g_strerror (e));
    return NULL;
  }
  if (!S_ISREG (st.st_mode)) {
    g_set_error (error, GST_RESOURCE_ERROR, GST_RESOURCE_ERROR_OPEN_READ,
        "Cannot open model file \"%s\": not a regular file", path);
    return NULL;
  }
  if (access (resolved, R_OK) != 0) {
    int e = errno;
    g_set_error (error, GST_RESOURCE_ERROR, GST_RESOURCE_ERROR_OPEN_READ,
        "Cannot open model file \"%s\": %s", path, g_strerror (e));
    return NULL;
  }
  *canon_out = g_strdup (resolved);
  return g_strdup_printf ("%s|%s|%ju:%ju:%jd:%jd.%09ld", kind, resolved,
      (uintmax_t) st.st_dev, (uintmax_t) st.st_ino, (intmax_t) st.st_size,
      (intmax_t) st.st_mtim.tv_sec, (long) st.st_mtim.tv_nsec);
}

GstLfm2Shared *
gst_lfm2_shared_acquire (const gchar * kind, const gchar * path, GstLfm2LoadFunc load,
    GstLfm2FreeFunc free_func, GError ** error)
{
  GstLfm2Shared *e;
  gchar *canon = NULL, *key;
  gpointer obj;
  GError *err = NULL;

  g_return_val_if_fail (kind != NULL && load != NULL, NULL);
  ensure_init ();

  key = canonical_key (kind, path, &canon, error);
  if (key == NULL)
    return NULL;

  g_mutex_lock (&registry_lock);
  if (registry == NULL)
    registry = g_hash_table_new (g_str_hash, g_str_equal);
  e = g_hash_table_lookup (registry, key);
  if (e != NULL) {
    e->users++;
    while (e->loading)
      g_cond_wait (&registry_cond, &registry_lock);
    if (e->load_error) {
      /* The loader failed while we waited: report its error, drop our hold. */
      g_propagate_error (error, g_error_copy (e->load_error));
      if (--e->users == 0)
        entry_free (e);
      e = NULL;
    } else {
      GST_DEBUG ("%s %s shared, %u users", kind, e->path, e->users);
    }
    g_mutex_unlock (&registry_lock);
    g_free (key);
    g_free (canon);
    return e;
  }

  e = g_new0 (GstLfm2Shared, 1);
  e->key = key;
  e->kind = g_strdup (kind);
  e->path = canon;
  e->free_func = free_func;
  e->users = 1;
  e->loading = TRUE;
  g_hash_table_insert (registry, e->key, e);
  registry_loads++;
  g_mutex_unlock (&registry_lock);

  /* Load without the lock: other files load in parallel; same-file callers wait above. */
  GST_INFO ("loading %s %s", kind, e->path);
  obj = load (e->path, &err);
  if (obj == NULL && err == NULL)
    g_set_error (&err, GST_RESOURCE_ERROR, GST_RESOURCE_ERROR_OPEN_READ,
        "Could not load model file \"%s\"", path);

  g_mutex_lock (&registry_lock);
  e->loading = FALSE;
  if (obj == NULL) {
    g_hash_table_remove (registry, e->key);
    e->load_error = g_error_copy (err);
    g_propagate_error (error, err);
    if (--e->users == 0)
      entry_free (e);
    e = NULL;
  } else {
    e->object = obj;
  }
  g_cond_broadcast (&registry_cond);
  g_mutex_unlock (&registry_lock);
  return e;
}

void
gst_lfm2_shared_release (GstLfm2Shared * e)
{
  gboolean last;

  if (e == NULL)
    return;
  g_mutex_lock (&registry_lock);
  g_assert (e->users > 0);
  last = --e->users == 0;
  if (last && g_hash_table_lookup (registry, e->key) == e)
    g_hash_table_remove (registry, e->key);
  g_mutex_unlock (&registry_lock);
  if (last) {
    GST_INFO ("freeing %s %s", e->kind, e->path);
    entry_free (e);             /* outside the lock: unmapping a big file takes time */
  }
}

gpointer
gst_lfm2_shared_get (GstLfm2Shared * e)
{
  return e ? e->object : NULL;
}

const gchar *
gst_lfm2_shared_path (GstLfm2Shared * e)
{
  return e ? e->path : NULL;
}

guint
gst_lfm2_shared_n_users (GstLfm2Shared * e)
{
  guint n;

  g_mutex_lock (&registry_lock);
  n = e ? e->users : 0;
  g_mutex_unlock (&registry_lock);
  return n;
}

guint
gst_lfm2_registry_n_entries (void)
{
  guint n;

  g_mutex_lock (&registry_lock);
  n = registry ? g_hash_table_size (registry) : 0;
  g_mutex_unlock (&registry_lock);
  return n;
}

guint
gst_lfm2_registry_n_users (const gchar * kind, const gchar * path)
{
  gchar *canon = NULL, *key;
  guint n = 0;

  key = canonical_key (kind, path, &canon, NULL);
  if (key == NULL)
    return 0;
  g_mutex_lock (&registry_lock);
  if (registry) {
    GstLfm2Shared *e = g_hash_table_lookup (registry, key);
    n = e ? e->users : 0;
  }
  g_mutex_unlock (&registry_lock);
  g_free (key);
  g_free (canon);
  return n;
}

guint
gst_lfm2_registry_n_loads (void)
{
  guint n;

  g_mutex_lock (&registry_lock);
  n = registry_loads;
  g_mutex_unlock (&registry_lock);
  return n;
}

/* ---- LFM2 text models ------------------------------------------------------------ */

static gpointer
load_text_model (const gchar * path, GError ** error)
{
  struct lfm2_model_params params = lfm2_model_default_params ();
  lfm2_model *m;

  lfm2_clear_error ();
  m = lfm2_model_load (path, params);
  if (m == NULL)
    g_set_error (error, GST_RESOURCE_ERROR, GST_RESOURCE_ERROR_OPEN_READ,
        "Could not load LFM2 model \"%s\": %s", path,
        lfm2_last_error ()[0] ? lfm2_last_error () : "unknown error");
  return m;
}

static void
free_text_model (gpointer m)
{
  lfm2_model_free (m);
}

GstLfm2Shared *
gst_lfm2_model_acquire (const gchar * path, GError ** error)
{
  return gst_lfm2_shared_acquire (GST_LFM2_KIND_TEXT_MODEL, path, load_text_model,
      free_text_model, error);
}

gboolean
gst_lfm2_model_acquire_optional (GstElement * element, const gchar * path,
    GstLfm2Shared ** shared)
{
  GError *err = NULL;
  gchar *dbg;

  *shared = NULL;
  if (path == NULL || path[0] == '\0')
    return TRUE;
  *shared = gst_lfm2_model_acquire (path, &err);
  if (*shared)
    return TRUE;
  dbg = g_strdup_printf ("model property: %s", path);
  GST_LFM2_POST_GERROR (element, GST_MESSAGE_ERROR, err, dbg);
  g_free (dbg);
  g_clear_error (&err);
  return FALSE;
}

gboolean
gst_lfm2_query_set_caps (GstQuery * query, GstCaps * caps)
{
  GstCaps *filter;

  gst_query_parse_caps (query, &filter);
  if (filter) {
    GstCaps *tmp = gst_caps_intersect_full (filter, caps, GST_CAPS_INTERSECT_FIRST);
    gst_caps_unref (caps);
    caps = tmp;
  }
  gst_query_set_caps_result (query, caps);
  gst_caps_unref (caps);
  return TRUE;
}
