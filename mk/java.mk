# The Java binding (bindings/java): JNI glue built by gcc, classes and JUnit 5 tests by Maven.
#   make java-tests   glue + mvn test + mvn test under -Xcheck:jni + the CTR example
#   make java-bench   per-call and bulk-copy figures (not a test)
# Outputs go to build/java/. Maven fills ~/.m2 on the first run and works offline after it.

JAVA_BUILD := build/java
JAVA_JNI := $(JAVA_BUILD)/libdeepseek_jni.so
JAVA_JNI_ABS := $(CURDIR)/$(JAVA_JNI)
JAVA_CLASSES := $(JAVA_BUILD)/maven/classes
# Lazily evaluated (=): on a fresh machine the JDK appears only once `setup` has run.
JAVA_HOME_DIR = $(or $(JAVA_HOME),$(patsubst %/bin/javac,%,$(realpath $(shell command -v javac))))
JAVA_RUN = java -Ddeepseek.jni=$(JAVA_JNI_ABS) -Ddeepseek.repo=$(CURDIR)
MVN_JAVA = mvn -q -B -Dstyle.color=never -f bindings/java/pom.xml -Ddeepseek.jni=$(JAVA_JNI_ABS)

.PHONY: java-tests java-jni java-bench

$(JAVA_JNI): bindings/java/native/deepseek_jni.c include/deepseek.h lib setup
	@mkdir -p $(JAVA_BUILD)
	$(CC) -std=c11 -Wall -Wextra -pedantic -Werror -O2 -g -fPIC -shared -Iinclude \
	  -I$(JAVA_HOME_DIR)/include -I$(JAVA_HOME_DIR)/include/linux $< -o $@ $(LINK_SO)

java-jni: $(JAVA_JNI)

# Surefire's own summary is hidden by -q: print one "N passed, N failed" line per run.
JAVA_SUMMARY = cat $(JAVA_BUILD)/maven/surefire-reports/TEST-*.xml | tr ' ' '\n' | \
  awk -F'"' '/^tests=/{t+=$$2} /^failures=/{f+=$$2} /^errors=/{f+=$$2} END{print ""; print "java-tests: " t-f " passed, " f " failed"}'

java-tests: $(JAVA_JNI) lib setup
	$(MVN_JAVA) test
	@$(JAVA_SUMMARY)
	@# Once more under -Xcheck:jni: the run must pass and the JVM must print no JNI warning
	@# (they go to the forked JVM's stdout, which surefire keeps in its .dumpstream files).
	@rm -f $(JAVA_BUILD)/maven/surefire-reports/*.dumpstream
	$(MVN_JAVA) test -Djvm.extra=-Xcheck:jni 2>&1 | tee $(JAVA_BUILD)/xcheck-jni.log; test $${PIPESTATUS[0]} -eq 0
	@$(JAVA_SUMMARY)
	@if grep -rs "WARNING in native method" $(JAVA_BUILD)/xcheck-jni.log $(JAVA_BUILD)/maven/surefire-reports; then \
	  echo "java-tests: -Xcheck:jni reported JNI misuse" >&2; exit 1; fi
	@mkdir -p $(JAVA_BUILD)/example
	javac -Xlint:all -Werror -cp $(JAVA_CLASSES) -d $(JAVA_BUILD)/example examples/java/CtrExample.java
	$(JAVA_RUN) -cp $(JAVA_CLASSES):$(JAVA_BUILD)/example CtrExample $(JAVA_BUILD)/ctr-example
	@echo "java-tests: JUnit (plain and -Xcheck:jni) and the CTR example passed"

java-bench: $(JAVA_JNI) lib setup
	$(MVN_JAVA) test-compile
	$(JAVA_RUN) -cp $(JAVA_CLASSES):$(JAVA_BUILD)/maven/test-classes ai.libdeepseek.Bench $(JAVA_BENCH_ARGS)

BINDING_TESTS += java-tests
