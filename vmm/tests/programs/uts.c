/* The node and domain names: root sets them for every process of the
 * processor (one UTS namespace); anyone else is refused. Run on Lego only:
 * on the host it would rename the machine. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

/* The first line of a file, without its newline. */
static const char *line(const char *path, char *buf, int size)
{
    FILE *f = fopen(path, "r");
    if (!f || !fgets(buf, size, f))
        snprintf(buf, size, "(%s)", strerror(errno));
    else
        buf[strcspn(buf, "\n")] = 0;
    if (f)
        fclose(f);
    return buf;
}

/* uname's names, and /proc/sys/kernel's, which must be the same. */
static void show(const char *when)
{
    struct utsname u;
    uname(&u);
    char host[80], domain[80];
    line("/proc/sys/kernel/hostname", host, sizeof host);
    line("/proc/sys/kernel/domainname", domain, sizeof domain);
    printf("%s: %s %s%s\n", when, u.nodename, u.domainname,
           strcmp(host, u.nodename) || strcmp(domain, u.domainname) ? " (not /proc's)" : "");
}

int main(void)
{
    setvbuf(stdout, 0, _IONBF, 0);
    show("at start");
    printf("sethostname: %d\n", sethostname("box-7", 5));
    printf("setdomainname: %d\n", setdomainname("rack.example", 12));
    show("after");
    char long_name[65];
    memset(long_name, 'x', sizeof long_name);
    int r = sethostname(long_name, 65);
    printf("65 bytes: %d %s\n", r, strerror(errno));
    printf("64 bytes: %d\n", sethostname(long_name, 64));
    char got[80];
    gethostname(got, sizeof got);
    printf("gethostname: %zu bytes\n", strlen(got));
    sethostname("box-7", 5);
    pid_t child = fork();
    if (child == 0) {
        show("in a child");
        setresuid(1000, 1000, 1000);
        int r = sethostname("mine", 4);
        printf("not root: %d %s\n", r, strerror(errno));
        _exit(0);
    }
    waitpid(child, 0, 0);
    show("at the end");
    return 0;
}
