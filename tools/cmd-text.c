/* cmd-text.c — placeholder, being written. */
#include "cli.h"
int cmd_generate(int argc, char **argv) { (void)argc; (void)argv; return cli_fail("generate", "not implemented yet"); }
int cmd_tokenize(int argc, char **argv) { (void)argc; (void)argv; return cli_fail("tokenize", "not implemented yet"); }
int cmd_logits(int argc, char **argv) { (void)argc; (void)argv; return cli_fail("logits", "not implemented yet"); }
int cmd_info(int argc, char **argv) { (void)argc; (void)argv; return cli_fail("info", "not implemented yet"); }
