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
endif()
