# Included from tests/CMakeLists.txt.

# End-to-end test of the command-line tool: gen -> align -> sample -> score,
# shapes, determinism, and clean failures on malformed input (bash only, no Python).
if(TARGET linalign_cli)
  add_test(NAME cli_end_to_end
           COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/cli_test.sh $<TARGET_FILE:linalign_cli>)
  set_tests_properties(cli_end_to_end PROPERTIES LABELS cpu TIMEOUT 300)
endif()
