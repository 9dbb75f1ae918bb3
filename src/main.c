/* kcp: subcommand dispatch only; each command lives in src/cli/. */
#include <kcp/cli.h>

int main(int argc, char **argv)
{
    return kcp_cli_main(argc, argv);
}
