build/repo-format/util/id.o: repo-format/util/id.c include/cairn/id.h \
 include/cairn/error.h
include/cairn/id.h:
include/cairn/error.h:
