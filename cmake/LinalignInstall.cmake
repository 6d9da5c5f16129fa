# install(EXPORT) + package config, so a consumer can find_package(linalign).
include(GNUInstallDirs)
include(CMakePackageConfigHelpers)

install(TARGETS linalign linalign_math EXPORT linalignTargets
  ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
  LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
  RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR}
  INCLUDES DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(DIRECTORY include/linalign DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(TARGETS linalign_c LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR})
if(TARGET linalign_cli)
  install(TARGETS linalign_cli RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
endif()
install(EXPORT linalignTargets NAMESPACE linalign::
  DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/linalign)
configure_package_config_file(${CMAKE_CURRENT_LIST_DIR}/linalignConfig.cmake.in
  ${CMAKE_CURRENT_BINARY_DIR}/linalignConfig.cmake
  INSTALL_DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/linalign)
write_basic_package_version_file(${CMAKE_CURRENT_BINARY_DIR}/linalignConfigVersion.cmake
  VERSION ${PROJECT_VERSION} COMPATIBILITY SameMajorVersion)
install(FILES ${CMAKE_CURRENT_BINARY_DIR}/linalignConfig.cmake
  ${CMAKE_CURRENT_BINARY_DIR}/linalignConfigVersion.cmake
  DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/linalign)
