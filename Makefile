# Builds the nginx-free part of the gateway (core, store, service) as a
# static PIC library that the nginx module, the unit tests and the crm-admin
# tool all link.  The module itself is built by nginx's own build system,
# driven by build.sh.

B        := build
SRC      := ngx_crm_module/src
CC       ?= cc
# Debian's default hardening (dpkg-buildflags): lintian checks the package
CFLAGS   ?= -O2 -g -fstack-protector-strong -D_FORTIFY_SOURCE=2
LDFLAGS  ?= -Wl,-z,relro,-z,now
CFLAGS   += -std=gnu11 -fPIC -Wall -Wextra -Werror -Wshadow \
            -Wstrict-prototypes -Wmissing-prototypes -D_GNU_SOURCE \
            -I$(SRC)/core -I$(SRC)/store -I$(SRC)/service \
            -I$(shell pg_config --includedir) -I/usr/include/libxml2
LIBS     := -lpq -lyajl -lcurl -lxml2 -largon2 -lcrypt -lcrypto -lpthread

LIB_SRCS := $(wildcard $(SRC)/core/*.c $(SRC)/store/*.c $(SRC)/service/*.c)
LIB_OBJS := $(LIB_SRCS:$(SRC)/%.c=$(B)/obj/%.o)
HDRS     := $(wildcard $(SRC)/core/*.h $(SRC)/store/*.h $(SRC)/service/*.h)
UNIT     := $(patsubst t/unit/%.c,$(B)/unit/%,$(wildcard t/unit/check_*.c))

FUZZ_CC     := clang
FUZZ_CFLAGS := -std=gnu11 -g -O1 -D_GNU_SOURCE \
               -fsanitize=fuzzer,address,undefined \
               -fno-sanitize-recover=undefined -I$(SRC)/core

.PHONY: all lib unit check fuzz clean

all: lib $(B)/crm-admin

lib: $(B)/libcrm.a

$(B)/obj/%.o: $(SRC)/%.c $(HDRS)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c -o $@ $<

$(B)/libcrm.a: $(LIB_OBJS)
	@rm -f $@
	ar rcs $@ $^

$(B)/crm-admin: $(SRC)/cli/crm_admin.c $(B)/libcrm.a
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $< $(B)/libcrm.a $(LIBS)

# microseconds per token verification, for bench/run.sh
$(B)/verify_speed: bench/verify_speed.c $(B)/libcrm.a
	$(CC) $(CFLAGS) -o $@ $< $(B)/libcrm.a $(LIBS)

$(B)/unit/%: t/unit/%.c t/unit/crm_check.h $(B)/libcrm.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -It/unit -o $@ $< $(B)/libcrm.a $(LIBS) \
	    $(shell pkg-config --libs check)

# the core parsers, instrumented as a whole (libcrm.a is not)
$(B)/fuzz/crm_fuzz: t/fuzz/crm_fuzz.c $(wildcard $(SRC)/core/*.c) $(HDRS)
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -o $@ t/fuzz/crm_fuzz.c \
	    $(wildcard $(SRC)/core/*.c) -lyajl -largon2 -lcrypt -lcrypto

fuzz: $(B)/fuzz/crm_fuzz

unit: $(UNIT)

check: unit
	@set -e; for t in $(UNIT); do echo "== $$t"; $$t; done

clean:
	rm -rf $(B)/obj $(B)/unit $(B)/fuzz $(B)/libcrm.a $(B)/crm-admin
