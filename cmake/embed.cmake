# SPDX-License-Identifier: Apache-2.0
# Turns a text file (IN) into a C file (OUT) defining `const char NAME[]` with its contents.
file(READ ${IN} hex HEX)
string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," hex "${hex}")
file(WRITE ${OUT} "/* Generated from ${IN}; do not edit. */\nconst char ${NAME}[] = {${hex} 0x00};\n")
