# Installing kiln (cmake --install build --prefix P) and packaging it
# (cpack -G DEB in the build folder):
#   bin/kiln                                   the CLI
#   lib/libkiln.so.0.1.0, .so.0.1, .so         the library (SONAME libkiln.so.0.1)
#   include/kiln/*.h                           the public API
#   lib/cmake/kiln/                            find_package(kiln CONFIG) -> kiln::kiln
#   lib/pkgconfig/kiln.pc                      pkg-config --cflags --libs kiln
#   share/kiln/models/digits/                  the quick-start model and its samples
include(CMakePackageConfigHelpers)

install(TARGETS kiln EXPORT kilnTargets
  LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR} COMPONENT runtime NAMELINK_COMPONENT runtime
  INCLUDES DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(DIRECTORY ${PROJECT_SOURCE_DIR}/include/kiln DESTINATION ${CMAKE_INSTALL_INCLUDEDIR} COMPONENT runtime)
install(EXPORT kilnTargets NAMESPACE kiln:: DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/kiln COMPONENT runtime)
configure_package_config_file(${PROJECT_SOURCE_DIR}/cmake/kilnConfig.cmake.in
  ${PROJECT_BINARY_DIR}/kilnConfig.cmake INSTALL_DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/kiln)
# Before 1.0 a minor version may break the API, so only the same minor
# version is compatible.
write_basic_package_version_file(${PROJECT_BINARY_DIR}/kilnConfigVersion.cmake COMPATIBILITY SameMinorVersion)
install(FILES ${PROJECT_BINARY_DIR}/kilnConfig.cmake ${PROJECT_BINARY_DIR}/kilnConfigVersion.cmake
  DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/kiln COMPONENT runtime)
# pkg-config: paths relative to the .pc file, so the prefix can move (and the
# .deb, installed under /usr, finds itself).
file(RELATIVE_PATH KILN_PC_PREFIX "/${CMAKE_INSTALL_LIBDIR}/pkgconfig" "/")
configure_file(${PROJECT_SOURCE_DIR}/cmake/kiln.pc.in ${PROJECT_BINARY_DIR}/kiln.pc @ONLY)
install(FILES ${PROJECT_BINARY_DIR}/kiln.pc DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig COMPONENT runtime)

if(KILN_BUILD_TOOLS)
  install(TARGETS kiln_cli RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR} COMPONENT runtime)
endif()
install(DIRECTORY ${PROJECT_SOURCE_DIR}/models/digits DESTINATION ${CMAKE_INSTALL_DATADIR}/kiln/models
  COMPONENT runtime PATTERN "*.py" EXCLUDE PATTERN "__pycache__" EXCLUDE)
install(FILES ${PROJECT_SOURCE_DIR}/README.md DESTINATION ${CMAKE_INSTALL_DOCDIR} COMPONENT runtime)

# cpack -G DEB: kiln_<version>_amd64.deb, its dependencies computed from the
# binaries by dpkg-shlibdeps (dpkg-dev), ldconfig run by its triggers.
set(CPACK_PACKAGE_NAME kiln)
set(CPACK_PACKAGE_VENDOR "kiln developers")
set(CPACK_PACKAGE_CONTACT "kiln developers <kiln@localhost>")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "inference engine for ONNX models on the CPU")
set(CPACK_PACKAGE_DESCRIPTION "kiln loads ONNX models (and PyTorch checkpoints through its network API), \
optimizes them and runs them on the CPU with vectorized, threaded kernels. This package holds the kiln \
command-line tool, the shared library with its C++ headers, CMake package and pkg-config file, and the \
digits example model in /usr/share/kiln/models/digits.")
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_STRIP_FILES ON)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SECTION science)
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_PACKAGE_GENERATE_SHLIBS ON)
set(CPACK_DEBIAN_PACKAGE_GENERATE_SHLIBS_POLICY ">=")
# dpkg-shlibdeps must find libkiln.so itself inside the package.
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS_PRIVATE_DIRS ${CMAKE_INSTALL_LIBDIR})
include(CPack)
