build/repo-format/util/buf.o: repo-format/util/buf.c include/cairn/buf.h \
 include/cairn/error.h
include/cairn/buf.h:
include/cairn/error.h:
