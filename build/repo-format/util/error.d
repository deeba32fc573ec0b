build/repo-format/util/error.o: repo-format/util/error.c \
 include/cairn/error.h
include/cairn/error.h:
