/* mkmodel.c — placeholder, being written. */
#include "cli.h"
int cmd_mkmodel(int argc, char **argv) { (void)argc; (void)argv; return cli_fail("mkmodel", "not implemented yet"); }
