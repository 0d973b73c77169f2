-- AlterTable
ALTER TABLE "ProgrammeEntry" ADD COLUMN "sourceUrl" TEXT;
