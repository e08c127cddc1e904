/* gstlfm2model.h — process-wide registry of loaded model files.
 *
 * Elements that name the same file share one loaded object (an lfm2_model, or later a vision
 * projector or an audio encoder): the registry keys entries by kind + canonical path + file
 * identity (device, inode, size, mtime), so a file replaced on disk is loaded afresh while the
 * elements still using the old one keep it. Each element creates its own context on top.
 *
 * Thread-safe. A file is loaded once even when several elements ask for it at the same time;
 * loading runs outside the registry lock, so different files load in parallel.
 */
#ifndef GST_LFM2_MODEL_H
#define GST_LFM2_MODEL_H

#include <gst/gst.h>

#include "lfm2.h"

G_BEGIN_DECLS

typedef struct _GstLfm2Shared GstLfm2Shared;

/* Loads `path` (already canonical) and returns the object, or NULL with *error set
 * (GST_RESOURCE_ERROR domain; the message names the file and the reason). */
typedef gpointer (*GstLfm2LoadFunc) (const gchar * path, GError ** error);
typedef void (*GstLfm2FreeFunc) (gpointer object);

/* Returns a reference to the object loaded from `path` for `kind` (a short constant string
 * such as "lfm2-text"), loading it with `load` if no element holds it yet. Errors:
 *   GST_RESOURCE_ERROR_NOT_FOUND  the file does not exist
 *   GST_RESOURCE_ERROR_OPEN_READ  it cannot be read, or `load` rejected it (the engine's reason)
 * Release with gst_lfm2_shared_release(). */
GstLfm2Shared *gst_lfm2_shared_acquire (const gchar * kind, const gchar * path,
    GstLfm2LoadFunc load, GstLfm2FreeFunc free_func, GError ** error);
void gst_lfm2_shared_release (GstLfm2Shared * shared);
gpointer gst_lfm2_shared_get (GstLfm2Shared * shared);
/* The canonical path the object was loaded from. */
const gchar *gst_lfm2_shared_path (GstLfm2Shared * shared);
/* Number of holders of this entry (for logs and tests). */
guint gst_lfm2_shared_n_users (GstLfm2Shared * shared);

/* Registry statistics (for tests and debugging): entries alive, and the holders of the entry
 * for `kind`/`path` (0 if none; path need not be canonical). */
guint gst_lfm2_registry_n_entries (void);
guint gst_lfm2_registry_n_users (const gchar * kind, const gchar * path);
/* Number of load-function calls so far (tests check a shared file is loaded once). */
guint gst_lfm2_registry_n_loads (void);

/* Posts a GError from the registry or the engine as an ERROR or WARNING message of `element`
 * (GST_MESSAGE_ERROR / _WARNING), keeping its domain, code and message; `debug` (may be NULL)
 * is the debug text, e.g. which property named the file. Like GST_ELEMENT_ERROR, it records
 * the caller's source location. */
#define GST_LFM2_POST_GERROR(element, type, err, debug)                                       \
  gst_element_message_full (GST_ELEMENT (element), (type), (err)->domain, (err)->code,        \
      g_strdup ((err)->message), g_strdup (debug), __FILE__, GST_FUNCTION, __LINE__)

/* ---- LFM2 text models ------------------------------------------------------------ */

#define GST_LFM2_KIND_TEXT_MODEL "lfm2-text"

/* gst_lfm2_shared_acquire() with lfm2_model_load()/lfm2_model_free(). */
GstLfm2Shared *gst_lfm2_model_acquire (const gchar * path, GError ** error);

static inline const lfm2_model *
gst_lfm2_shared_model (GstLfm2Shared * shared)
{
  return (const lfm2_model *) gst_lfm2_shared_get (shared);
}

G_END_DECLS

#endif /* GST_LFM2_MODEL_H */
