/* cairn.h: umbrella header of the cairn repository-format library. */
#ifndef CAIRN_H
#define CAIRN_H
#include "error.h"
#include "buf.h"
#include "id.h"
#include "log.h"
#include "timestamp.h"
#include "crypto.h"
#include "compress.h"
#include "chunker.h"
#include "backend.h"
#include "pack.h"
#include "index.h"
#include "tree.h"
#include "snapshot.h"
#include "repo.h"
#include "lock.h"
#include "pool.h"
#include "version.h"
#endif
