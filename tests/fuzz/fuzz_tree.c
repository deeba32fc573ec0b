/* fuzz_tree.c: libFuzzer harness for cairn_tree_decode (tree blobs).
 *
 * A tree blob comes from a pack anyone with the key could have written, and
 * restore turns its node names into paths.  The input is the tree JSON.
 * Beyond "no crash, no leak, no UB" the harness aborts when the decoder
 * breaks a promise: a failure must be CAIRN_ECORRUPT with a message and an
 * empty tree; an accepted tree must have only names restore can use (not
 * "", "." or "..", no '/'), known types, a subtree for every dir, names
 * strictly sorted; and it must re-encode and decode again to the same nodes
 * (names byte for byte through Go quoting and JSON escaping).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cairn/cairn.h>

#define REQUIRE(c) do { if (!(c)) { fprintf(stderr, "fuzz_tree: violated: %s (last error: %s)\n", \
	#c, cairn_error_message()); abort(); } } while (0)

static void require_sane(const cairn_tree *t)
{
	for (size_t i = 0; i < t->n; i++) {
		const cairn_node *n = &t->nodes[i];
		REQUIRE(n->name != NULL);
		REQUIRE(cairn_node_name_check(n->name) == 0);
		REQUIRE(strchr(n->name, '/') == NULL);
		REQUIRE((unsigned)n->type <= CAIRN_NODE_SOCKET);
		REQUIRE(n->type != CAIRN_NODE_DIR || n->has_subtree);
		REQUIRE(n->n_content == 0 || n->content != NULL);
		REQUIRE(i == 0 || strcmp(t->nodes[i - 1].name, n->name) < 0);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	cairn_tree t = CAIRN_TREE_INIT, t2 = CAIRN_TREE_INIT;
	cairn_buf enc = CAIRN_BUF_INIT;
	int r;

	cairn_error_clear();
	r = cairn_tree_decode(&t, (const char *)data, size);
	if (r < 0) {
		REQUIRE(r == CAIRN_ECORRUPT);
		REQUIRE(cairn_error_message()[0] != '\0');
		REQUIRE(t.n == 0 && t.nodes == NULL);
		return 0;
	}
	require_sane(&t);
	REQUIRE(cairn_tree_encode(&enc, &t) == 0);
	REQUIRE(cairn_tree_decode(&t2, (const char *)enc.data, enc.len) == 0);
	REQUIRE(t2.n == t.n);
	for (size_t i = 0; i < t.n; i++) {
		const cairn_node *a = &t.nodes[i], *b = &t2.nodes[i];
		REQUIRE(strcmp(a->name, b->name) == 0);
		REQUIRE(a->type == b->type && a->mode == b->mode);
		REQUIRE(a->uid == b->uid && a->gid == b->gid && a->size == b->size);
		REQUIRE(a->inode == b->inode && a->device_id == b->device_id && a->links == b->links);
		REQUIRE(a->device == b->device);
		/* Non-files are written with "content":null, so their list goes. */
		if (a->type == CAIRN_NODE_FILE) {
			REQUIRE(a->n_content == b->n_content);
			REQUIRE(a->n_content == 0 ||
				memcmp(a->content, b->content, a->n_content * sizeof(cairn_id)) == 0);
		}
		REQUIRE(a->type != CAIRN_NODE_DIR || cairn_id_equal(&a->subtree, &b->subtree));
		REQUIRE(a->n_xattrs == b->n_xattrs);
		for (size_t k = 0; k < a->n_xattrs; k++) {
			REQUIRE(strcmp(a->xattrs[k].name, b->xattrs[k].name) == 0);
			REQUIRE(a->xattrs[k].value_len == b->xattrs[k].value_len);
			REQUIRE(a->xattrs[k].value_len == 0 ||
				memcmp(a->xattrs[k].value, b->xattrs[k].value, a->xattrs[k].value_len) == 0);
		}
	}
	cairn_tree_release(&t);
	cairn_tree_release(&t2);
	cairn_buf_release(&enc);
	return 0;
}
