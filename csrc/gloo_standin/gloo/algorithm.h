// Stand-in for gloo's gloo/algorithm.h: ProcessGroupGloo.hpp needs nothing from it beyond context.h.
#pragma once

#include <gloo/context.h>
