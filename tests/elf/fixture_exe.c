/* main() for the non-PIE build of fixture.c. */
#include "fixture.h"

int main(int argc, char **argv)
{
    (void)argv;
    return pf_fixture_func(argc) + (int)pf_fixture_data;
}
