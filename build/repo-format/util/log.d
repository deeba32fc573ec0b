build/repo-format/util/log.o: repo-format/util/log.c include/cairn/log.h \
 include/cairn/error.h
include/cairn/log.h:
include/cairn/error.h:
