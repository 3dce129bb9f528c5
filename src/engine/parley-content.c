/* SPDX-License-Identifier: GPL-3.0-or-later */
#define G_LOG_DOMAIN "parley-content"

#include "config.h"

#include <glib/gi18n-lib.h>
#include <json-glib/json-glib.h>

#include "parley-content.h"
#include "parley-error.h"

/**
 * parley_content_encode:
 * @body: the UTF-8 message text
 *
 * Wraps @body in the versioned content envelope `{"v":1,"body":"..."}` that
 * travels in `encryptedContent`. End-to-end encryption will replace the
 * plaintext envelope with a later version.
 *
 * Returns: (transfer full): the envelope as JSON text
 */
char *
parley_content_encode (const char *body)
{
  g_autoptr(JsonBuilder) builder = json_builder_new ();
  g_autoptr(JsonNode) root = NULL;

  g_return_val_if_fail (body != NULL, NULL);

  json_builder_begin_object (builder);
  json_builder_set_member_name (builder, "v");
  json_builder_add_int_value (builder, PARLEY_CONTENT_VERSION);
  json_builder_set_member_name (builder, "body");
  json_builder_add_string_value (builder, body);
  json_builder_end_object (builder);
  root = json_builder_get_root (builder);

  return json_to_string (root, FALSE);
}

/**
 * parley_content_decode:
 * @content: the `encryptedContent` string of a message
 * @error: return location for a #GError
 *
 * Decodes a content envelope. Envelopes of an unknown version fail with
 * %PARLEY_ERROR_UNSUPPORTED, malformed ones with %PARLEY_ERROR_INVALID.
 *
 * Returns: (transfer full): the message text, or %NULL with @error set
 */
char *
parley_content_decode (const char  *content,
                       GError     **error)
{
  g_autoptr(JsonParser) parser = json_parser_new ();
  g_autoptr(GError) local_error = NULL;
  JsonObject *object;
  JsonNode *node;
  const char *body;

  g_return_val_if_fail (content != NULL, NULL);

  if (!json_parser_load_from_data (parser, content, -1, &local_error)) {
    g_set_error (error, PARLEY_ERROR, PARLEY_ERROR_INVALID,
                 _("Message content is not JSON: %s"), local_error->message);
    return NULL;
  }

  node = json_parser_get_root (parser);
  if (node == NULL || !JSON_NODE_HOLDS_OBJECT (node)) {
    g_set_error_literal (error, PARLEY_ERROR, PARLEY_ERROR_INVALID,
                         _("Message content is not a JSON object"));
    return NULL;
  }
  object = json_node_get_object (node);

  node = json_object_get_member (object, "v");
  if (node == NULL || !JSON_NODE_HOLDS_VALUE (node) ||
      json_node_get_value_type (node) != G_TYPE_INT64) {
    g_set_error_literal (error, PARLEY_ERROR, PARLEY_ERROR_INVALID,
                         _("Message content has no version"));
    return NULL;
  }
  if (json_node_get_int (node) != PARLEY_CONTENT_VERSION) {
    g_set_error (error, PARLEY_ERROR, PARLEY_ERROR_UNSUPPORTED,
                 _("Message content version %lld is not supported"),
                 (long long) json_node_get_int (node));
    return NULL;
  }

  node = json_object_get_member (object, "body");
  if (node == NULL || !JSON_NODE_HOLDS_VALUE (node) ||
      json_node_get_value_type (node) != G_TYPE_STRING) {
    g_set_error_literal (error, PARLEY_ERROR, PARLEY_ERROR_INVALID,
                         _("Message content has no body"));
    return NULL;
  }
  body = json_node_get_string (node);
  if (!g_utf8_validate (body, -1, NULL)) {
    g_set_error_literal (error, PARLEY_ERROR, PARLEY_ERROR_INVALID,
                         _("Message body is not valid UTF-8"));
    return NULL;
  }

  return g_strdup (body);
}
