/* SPDX-License-Identifier: GPL-3.0-or-later */
#define G_LOG_DOMAIN "test-content"

#include <json-glib/json-glib.h>

#include "parley-content.h"
#include "parley-error.h"

static void
test_round_trip (void)
{
  const char *bodies[] = { "hello", "", "quote \" backslash \\ newline \n tab \t",
                           "ünïcödé 🙂 日本語", "{\"v\":2,\"body\":\"nested\"}" };

  for (guint i = 0; i < G_N_ELEMENTS (bodies); i++) {
    g_autofree char *content = parley_content_encode (bodies[i]);
    g_autoptr(GError) error = NULL;
    g_autofree char *decoded = parley_content_decode (content, &error);

    g_assert_no_error (error);
    g_assert_cmpstr (decoded, ==, bodies[i]);
  }
}

static void
test_encoded_shape (void)
{
  g_autofree char *content = parley_content_encode ("hi");
  g_autoptr(JsonParser) parser = json_parser_new ();
  JsonObject *object;

  /* The envelope must be a JSON object with exactly v = 1 and the body. */
  g_assert_true (json_parser_load_from_data (parser, content, -1, NULL));
  object = json_node_get_object (json_parser_get_root (parser));
  g_assert_cmpint (json_object_get_size (object), ==, 2);
  g_assert_cmpint (json_object_get_int_member (object, "v"), ==, 1);
  g_assert_cmpstr (json_object_get_string_member (object, "body"), ==, "hi");
}

static void
test_decode_written_by_hand (void)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *body = parley_content_decode ("{ \"body\" : \"a\\\"b\\u00e9\", \"v\" : 1 }",
                                                 &error);

  g_assert_no_error (error);
  g_assert_cmpstr (body, ==, "a\"b\xc3\xa9");
}

static void
test_unknown_version (void)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *body = parley_content_decode ("{\"v\":2,\"ciphertext\":\"xyz\"}", &error);

  g_assert_null (body);
  g_assert_error (error, PARLEY_ERROR, PARLEY_ERROR_UNSUPPORTED);
}

static void
test_malformed (void)
{
  const char *inputs[] = {
    "", "not json", "[1,2]", "\"string\"", "42", "null", "{}",
    "{\"v\":\"1\",\"body\":\"x\"}", "{\"v\":1.0,\"body\":\"x\"}", "{\"v\":1}",
    "{\"v\":1,\"body\":5}", "{\"v\":1,\"body\":null}", "{\"v\":1,\"body\":[\"x\"]}",
    "{\"v\":1,\"body\":\"x\"", "{\"v\":null,\"body\":\"x\"}",
  };

  for (guint i = 0; i < G_N_ELEMENTS (inputs); i++) {
    g_autoptr(GError) error = NULL;
    g_autofree char *body = parley_content_decode (inputs[i], &error);

    g_test_message ("input: %s", inputs[i]);
    g_assert_null (body);
    g_assert_error (error, PARLEY_ERROR, PARLEY_ERROR_INVALID);
  }
}

int
main (int   argc,
      char *argv[])
{
  g_test_init (&argc, &argv, NULL);

  g_test_add_func ("/content/round-trip", test_round_trip);
  g_test_add_func ("/content/encoded-shape", test_encoded_shape);
  g_test_add_func ("/content/decode-by-hand", test_decode_written_by_hand);
  g_test_add_func ("/content/unknown-version", test_unknown_version);
  g_test_add_func ("/content/malformed", test_malformed);

  return g_test_run ();
}
