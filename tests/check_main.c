/*
 * check_main.c — the one Check runner.  Each tests/test_<module>.c defines
 * `Suite *<module>_suite(void)`; meson builds one executable per module with
 * SUITE_FN set to that function, so modules test and link on their own.
 */
#include <check.h>
#include <stdlib.h>

Suite *SUITE_FN(void);

int main(void)
{
	SRunner *sr = srunner_create(SUITE_FN());
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
