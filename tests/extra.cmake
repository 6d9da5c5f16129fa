# Included from tests/CMakeLists.txt.

# End-to-end test of the command-line tool: gen -> align -> sample -> score,
# shapes, determinism, and clean failures on malformed input (bash only, no Python).
# The second argument, when the emulated tool is built (tests/emu), is a CLI
# whose --backend cuda runs the CUDA backend's kernels on the SIMT emulator:
# the script checks that bad score input fails the same way on both backends.
if(TARGET linalign_cli)
  set(LINALIGN_CLI_TEST_ARGS $<TARGET_FILE:linalign_cli>)
  if(TARGET linalign_cli_emulated)
    list(APPEND LINALIGN_CLI_TEST_ARGS $<TARGET_FILE:linalign_cli_emulated>)
  endif()
  add_test(NAME cli_end_to_end
           COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/cli_test.sh ${LINALIGN_CLI_TEST_ARGS})
  set_tests_properties(cli_end_to_end PROPERTIES LABELS cpu TIMEOUT 300)
  # score-job killed with SIGKILL at random moments resumes to the
  # uninterrupted output (linalign/scoring_job.hpp).
  add_test(NAME score_job_kill_resume
           COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/score_job_test.sh ${LINALIGN_CLI_TEST_ARGS})
  set_tests_properties(score_job_kill_resume PROPERTIES LABELS cpu TIMEOUT 600)
  # The README's main job on the real model: reproducible, the same stories
  # on the emulated CUDA backend, each mode's eta as it should be.
  add_test(NAME story_end_to_end
           COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/story_test.sh ${LINALIGN_CLI_TEST_ARGS})
  set_tests_properties(story_end_to_end PROPERTIES LABELS "cpu;model" TIMEOUT 600)
endif()

# liblinalign_c.so exports the C API and nothing else (cmake/linalign_c.map):
# every defined dynamic symbol starts with linalign_. (Not in the sanitizer
# builds: their runtimes must be loaded first, and they add symbols.)
if(NOT LINALIGN_SANITIZE AND NOT LINALIGN_TSAN)
add_test(NAME exported_symbols
         COMMAND bash -c "syms=$(nm -D --defined-only \"$1\" | awk '{print $3}' | grep -v '^$'); \
echo \"$syms\" | grep -c . ; bad=$(echo \"$syms\" | grep -v '^linalign_'); \
if [ -n \"$bad\" ]; then echo \"exported beyond linalign_*:\"; echo \"$bad\"; exit 1; fi; \
echo \"$syms\" | grep -qx linalign_submit && echo \"$syms\" | grep -qx linalign_create"
         _ $<TARGET_FILE:linalign_c>)
set_tests_properties(exported_symbols PROPERTIES LABELS cpu)
endif()

# The same library through Python's ctypes, as an FFI engine would bind it.
find_package(Python3 COMPONENTS Interpreter)
if(Python3_Interpreter_FOUND AND NOT LINALIGN_SANITIZE AND NOT LINALIGN_TSAN)
  add_test(NAME ffi_ctypes_batcher
           COMMAND ${Python3_EXECUTABLE} ${CMAKE_CURRENT_SOURCE_DIR}/ffi/ctypes_batcher.py
                   $<TARGET_FILE:linalign_c>)
  set_tests_properties(ffi_ctypes_batcher PROPERTIES LABELS cpu TIMEOUT 60)
endif()

# Known facts of the stories15M checkpoint (issue 12): the forward pass and
# tokenizer of examples/story against them. The model is fetched by
# scripts/test.sh (scripts/fetch_model.sh); label "model".
add_executable(test_stories15m ${CMAKE_CURRENT_SOURCE_DIR}/model/test_stories15m.cpp)
target_link_libraries(test_stories15m PRIVATE GTest::gtest GTest::gtest_main)
target_include_directories(test_stories15m PRIVATE ${PROJECT_SOURCE_DIR}/examples/story)
linalign_set_warnings(test_stories15m)
gtest_discover_tests(test_stories15m DISCOVERY_TIMEOUT 60 PROPERTIES LABELS "cpu;model")
