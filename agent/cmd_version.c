/* cmd_version.c: `cairn version`. */
#include <openssl/opensslv.h>
#include <zstd.h>
#include <jansson.h>

#include "cli.h"

const char cmd_version_usage[] =
	"Usage: cairn version\n\nPrint cairn's version and the versions of the libraries it uses.\n";

int cmd_version(const cli_globals *g, int argc, char **argv)
{
	if (g->json) {
		json_t *o = json_pack("{s:s,s:s,s:s,s:i}", "version", CAIRN_VERSION,
			"openssl", OPENSSL_VERSION_TEXT, "zstd", ZSTD_versionString(),
			"repository_format", 2);
		cli_json_print(o);
		json_decref(o);
		return CLI_EXIT_OK;
	}
	printf("cairn %s (restic repository format v1/v2; %s, zstd %s)\n", CAIRN_VERSION,
		OPENSSL_VERSION_TEXT, ZSTD_versionString());
	return CLI_EXIT_OK;
}
