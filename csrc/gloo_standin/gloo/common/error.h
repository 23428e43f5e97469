// Stand-in for gloo's gloo/common/error.h: ProcessGroupGloo.hpp names nothing from it.
#pragma once
